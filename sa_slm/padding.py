"""Padding helpers for batches of variable-length rows (token ids or embedding rows)."""

from __future__ import annotations

import torch


def left_pad(rows: list[torch.Tensor], pad_value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (len_i, ...) rows left-padded → (B, P, ...) and a (B, P) long mask, 1 at real entries."""
    width = max(len(r) for r in rows)
    out = rows[0].new_full((len(rows), width, *rows[0].shape[1:]), pad_value)
    mask = torch.zeros(len(rows), width, dtype=torch.long, device=rows[0].device)
    for i, r in enumerate(rows):
        out[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return out, mask


def strip_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
    """Real tokens of each (left- or right-) padded row."""
    return [ids[m.bool()] for ids, m in zip(input_ids, attention_mask)]
