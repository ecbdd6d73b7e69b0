"""Qwen2.5-Omni with the intent bridge inside, so one PreTrainedModel holds every trainable part.

Loading a stock checkpoint adds the bridge with its zero-initialised AdaLN/acoustic projections (the
bridge then passes LayerNorm(e_t), or h_t + e_t in mode `add`); `save_pretrained` writes the bridge
weights next to the base model's and its settings into `config.json` under `sa_slm`.
"""

from __future__ import annotations

from dataclasses import asdict

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
