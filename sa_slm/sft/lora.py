"""Optional LoRA adapters on the Thinker LLM (stage 1), injected in place with PEFT and merged before
the final save, so the saved model is a plain Qwen2.5-Omni + bridge in Hugging Face layout."""

from __future__ import annotations

from torch import nn


def add_thinker_lora(model: nn.Module, r: int, alpha: int, dropout: float, target_modules: list[str]) -> int:
    """Inject adapters into the Thinker's language model; returns the number of adapted layers."""
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.lora import LoraLayer

    llm = model.thinker.model.language_model
    inject_adapter_in_model(LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules), llm)
    return sum(isinstance(m, LoraLayer) for m in llm.modules())


def merge_thinker_lora(model: nn.Module) -> int:
    """Fold every adapter into its base weight and put the plain layer back; returns how many."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for parent in list(model.thinker.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoraLayer):
                child.merge()
                setattr(parent, name, child.get_base_layer())
                merged += 1
    return merged
