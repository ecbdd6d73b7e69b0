"""The UAPO objective, kept in one small function so it can be changed.

Per prompt, K rollouts y_k and one context-unaware anchor rollout y_a, each with a utility u in
[0, 1] and an implicit reward r(y) = log pi_theta(y|x) - log pi_ref(y|x) (sum over codes). Rollouts
that beat the anchor are preferred (W), those below it rejected (L):

    L = - mean_{k in W} w_k log sigmoid(beta (r_k - r_a)) - mean_{k in L} w_k log sigmoid(beta (r_a - r_k))

with w_k = 1, or |u_k - u_a| (normalised to mean 1 over its set) when margin weighting is on. The
published formula was not available; this is the reconstruction from the paper's description
(anchor as the reference point, KTO/DPO family). An empty set contributes 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class UAPOLoss:
    loss: torch.Tensor  # scalar, averaged over prompts that have any preferred or rejected rollout
    preferred: torch.Tensor  # (B,) size of W per prompt
    rejected: torch.Tensor  # (B,) size of L per prompt
    reward_margin: torch.Tensor  # (B, K) r_k - r_a (detached), for logging


def _weighted_mean(values: torch.Tensor, select: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-row mean of values over `select`, weighted by `weights` normalised to mean 1 (0 if empty)."""
    w = weights * select
    total = w.sum(-1)
    return torch.where(total > 0, (values * w).sum(-1) / total.clamp_min(1e-12), torch.zeros_like(total))


def uapo_loss(
    logp: torch.Tensor,
    ref_logp: torch.Tensor,
    utility: torch.Tensor,
    anchor_logp: torch.Tensor,
    anchor_ref_logp: torch.Tensor,
    anchor_utility: torch.Tensor,
    beta: float = 0.1,
    margin_weighting: bool = False,
    valid: torch.Tensor | None = None,
) -> UAPOLoss:
    """logp, ref_logp, utility: (B, K) per rollout; anchor_*: (B,). valid: (B, K) drops rollouts
    (e.g. a critic failure) from both sets."""
    valid = torch.ones_like(utility, dtype=torch.bool) if valid is None else valid
    margin = (logp - ref_logp) - (anchor_logp - anchor_ref_logp)[:, None]  # r_k - r_a
    preferred = (utility > anchor_utility[:, None]) & valid
    rejected = (utility < anchor_utility[:, None]) & valid
    weights = (utility - anchor_utility[:, None]).abs() if margin_weighting else torch.ones_like(utility)
    win = _weighted_mean(-F.logsigmoid(beta * margin), preferred.float(), weights)
    lose = _weighted_mean(-F.logsigmoid(-beta * margin), rejected.float(), weights)
    active = preferred.any(-1) | rejected.any(-1)
    per_prompt = win + lose
    loss = (per_prompt * active).sum() / active.sum().clamp_min(1)
    return UAPOLoss(loss, preferred.sum(-1), rejected.sum(-1), margin.detach())
