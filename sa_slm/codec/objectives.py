"""Stage-0 objectives on the speech tokenizer's output: code cross-entropy on self-bootstrapped pairs
(the frozen-DiT flow-matching loss on real speech is in `flow_matching.py`)."""

from __future__ import annotations

import torch
from torch import nn


def code_cross_entropy(logits: torch.Tensor, code_mask: torch.Tensor, codes: torch.Tensor,
                       code_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CE and argmax accuracy of (B, T, V) tokenizer logits against (B, T') target codes, over the
    positions that are real on both sides (the audio's `code_mask` and the first `code_lengths` targets)."""
    steps = min(logits.shape[1], codes.shape[1])
    positions = torch.arange(steps, device=logits.device)[None]
    mask = code_mask[:, :steps] & (positions < code_lengths[:, None])
    ce = nn.functional.cross_entropy(logits[:, :steps].float().transpose(1, 2), codes[:, :steps].clamp_min(0),
                                     reduction="none")
    n = mask.sum().clamp_min(1)
    return (ce * mask).sum() / n, ((logits[:, :steps].argmax(-1) == codes[:, :steps]) & mask).sum() / n
