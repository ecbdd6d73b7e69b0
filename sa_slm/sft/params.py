"""What trains in stages 1–2, and in which learning-rate group (speech side vs LLM)."""

from __future__ import annotations

from torch import nn

from ..modeling import SASLMOmniModel


def configure_trainable(model: SASLMOmniModel, train_talker: bool = True, train_bridge: bool = True,
                        thinker_last_layers: int = 0) -> dict[str, list[nn.Parameter]]:
    """Freeze everything, then unfreeze the chosen parts. Returns {"speech": [...], "llm": [...]}.

    speech: the Talker and the intent bridge; llm: the last `thinker_last_layers` Thinker decoder
    layers (stage 2) and any LoRA adapters injected into the Thinker. Token2Wav, the audio tower and
    the rest of the Thinker stay frozen.
    """
    model.requires_grad_(False)
    groups: dict[str, list[nn.Parameter]] = {"speech": [], "llm": []}
    if train_talker:
        groups["speech"] += list(model.talker.parameters())
    if train_bridge:
        groups["speech"] += list(model.intent_bridge.parameters())
    if thinker_last_layers > 0:
        layers = model.thinker.model.language_model.layers
        for layer in layers[len(layers) - thinker_last_layers:]:
            groups["llm"] += list(layer.parameters())
    groups["llm"] += [p for n, p in model.thinker.named_parameters() if "lora_" in n]
    for params in groups.values():
        for p in params:
            p.requires_grad_(True)
    return groups
