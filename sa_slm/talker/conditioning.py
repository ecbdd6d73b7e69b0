"""The single place where the Talker's per-token `reply_part` is formed from Thinker states.

Stock Qwen2.5-Omni feeds `h_t + e_t` (mode `add`); a TTS-like Talker reads `e_t` only (mode `text`).
The intent bridge (later stages) plugs in here as further modes.
"""

from __future__ import annotations

import torch
from torch import nn

CONDITIONING_MODES = ("add", "text")


class ReplyConditioner(nn.Module):
    """Maps Thinker states of reply tokens to the Talker's reply stream.

    hidden: (B, n, D) last-layer post-norm hidden states; embeds: (B, n, D) input embeddings.
    Returns (B, n, D).
    """

    def __init__(self, mode: str = "add") -> None:
        super().__init__()
        if mode not in CONDITIONING_MODES:
            raise ValueError(f"unknown conditioning mode {mode!r}; choose one of {', '.join(CONDITIONING_MODES)}")
        self.mode = mode

    def forward(self, hidden: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        if self.mode == "add":
            return hidden + embeds
        return embeds
