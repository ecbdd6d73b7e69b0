"""Qwen2.5-Omni with the intent bridge inside, so one PreTrainedModel holds every trainable part.

Loading a stock checkpoint adds the bridge with its zero-initialised AdaLN/acoustic projections (the
bridge then passes LayerNorm(e_t), or h_t + e_t in mode `add`); `save_pretrained` writes the bridge
weights next to the base model's and its settings into `config.json` under `sa_slm`.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn
from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

from .bridge import IntentBridge, IntentBridgeConfig


def bridge_config(config: Qwen2_5OmniConfig) -> IntentBridgeConfig:
    return IntentBridgeConfig(**(getattr(config, "sa_slm", None) or {}))


def with_bridge(config: Qwen2_5OmniConfig, bridge: IntentBridgeConfig) -> Qwen2_5OmniConfig:
    """Record the bridge settings in the model config (they are saved with it)."""
    config.sa_slm = asdict(bridge)
    return config


class SASLMOmniModel(Qwen2_5OmniForConditionalGeneration):
    def __init__(self, config: Qwen2_5OmniConfig) -> None:
        super().__init__(config)
        self.intent_bridge = IntentBridge(bridge_config(config), config.thinker_config.text_config.hidden_size)

    def _init_weights(self, module: nn.Module) -> None:
        if getattr(module, "zero_init", False):  # AdaLN gamma/delta, acoustic projection
            for param in module.parameters(recurse=True):
                nn.init.zeros_(param)
            return
        super()._init_weights(module)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        reply_ids: torch.Tensor,
        reply_lengths: torch.Tensor,
        codes: torch.Tensor,
        code_lengths: torch.Tensor,
        speaker_bos: torch.Tensor,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        kl_weight: float = 0.0,
        text_loss_weight: float = 0.0,
        sample_latent: bool = True,
        **_: object,
    ) -> dict[str, torch.Tensor]:
        """SFT step on a collated batch: codec CE + kl_weight * KL (+ text_loss_weight * reply-text CE).

        Returns the total `loss` and every term (for logging). The same teacher-forced path that
        scores rollouts computes the logits, so training optimises exactly what generation samples.
        """
        from .sft.losses import codec_cross_entropy, intent_statistics, reply_text_cross_entropy
        from .talker.forward import teacher_forced_batch

        batch = dict(input_ids=input_ids, attention_mask=attention_mask, reply_ids=reply_ids,
                     reply_lengths=reply_lengths, codes=codes, code_lengths=code_lengths, speaker_bos=speaker_bos)
        if input_features is not None:
            batch.update(input_features=input_features, feature_attention_mask=feature_attention_mask)
        step = teacher_forced_batch(self, batch, with_text_logits=text_loss_weight > 0, sample_latent=sample_latent,
                                    with_logprobs=False)
        codec_loss, codec_accuracy = codec_cross_entropy(step, codes)
        kl = self.intent_bridge.kl(step.bridge, step.reply_mask)
        loss = codec_loss + kl_weight * kl
        out = {"codec_loss": codec_loss, "codec_accuracy": codec_accuracy, "kl": kl}
        if text_loss_weight > 0:
            eos = self.config.thinker_config.text_config.eos_token_id or self.config.thinker_config.eos_token_id
            out["text_loss"] = reply_text_cross_entropy(step, reply_ids, int(eos))
            loss = loss + text_loss_weight * out["text_loss"]
        return {"loss": loss, **out, **intent_statistics(step)}
