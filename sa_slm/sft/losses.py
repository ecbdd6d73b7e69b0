"""SFT loss terms: codec cross-entropy, reply-text cross-entropy, and intent statistics."""

from __future__ import annotations

import torch
from torch import nn

from ..talker.forward import TeacherForcedBatch


def codec_cross_entropy(step: TeacherForcedBatch, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CE of the raw codec logits over real code steps, and the argmax accuracy."""
    logits, mask = step.talker.logits, step.talker.mask
    ce = nn.functional.cross_entropy(logits.transpose(1, 2), codes.clamp_min(0), reduction="none")
    n = mask.sum().clamp_min(1)
    accuracy = ((logits.argmax(-1) == codes) & mask).sum() / n
    return (ce * mask).sum() / n, accuracy


def reply_text_cross_entropy(step: TeacherForcedBatch, reply_ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Thinker CE on the reply: the state at prompt position L-1+j predicts g_j, at L-1+n the EOS."""
    states = step.states
    logits = states.text_logits  # (B, S, V)
    n = states.reply_lengths
    steps = int(n.max()) + 1
    j = torch.arange(steps, device=logits.device)[None]
    mask = j <= n[:, None]
    positions = torch.where(mask, states.prompt_lengths[:, None] - 1 + j, 0)
    targets = torch.cat([reply_ids, reply_ids.new_zeros(reply_ids.shape[0], 1)], dim=1)[:, :steps].clone()
    targets[torch.arange(len(n)), n] = eos_id
    picked = torch.gather(logits, 1, positions[..., None].expand(-1, -1, logits.shape[-1]))
    ce = nn.functional.cross_entropy(picked.float().transpose(1, 2), targets, reduction="none")
    return (ce * mask).sum() / mask.sum().clamp_min(1)


@torch.no_grad()
def intent_statistics(step: TeacherForcedBatch) -> dict[str, torch.Tensor]:
    """|mu|, posterior sigma and the step-to-step change of z over real reply tokens (vib_adaln only)."""
    b = step.bridge
    if b.mu is None:
        return {}
    mask = step.reply_mask
    m = mask[..., None].float()
    count = m.sum().clamp_min(1) * b.mu.shape[-1]
    pair = (mask[:, 1:] & mask[:, :-1])[..., None].float()
    delta = ((b.z[:, 1:] - b.z[:, :-1]).abs() * pair).sum() / (pair.sum().clamp_min(1) * b.mu.shape[-1])
    return {
        "intent_mu_abs": (b.mu.abs() * m).sum() / count,
        "intent_sigma": ((0.5 * b.logvar).exp() * m).sum() / count,
        "intent_step_change": delta,
    }
