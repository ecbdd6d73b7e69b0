"""KL weight schedule: 0 for the warm-up fraction of training, then a cosine ramp to beta_max."""

from __future__ import annotations

import math


def beta_at(step: int, total_steps: int, beta_max: float = 0.5, warmup: float = 0.1) -> float:
    """beta(step): 0 while step < warmup * total, then beta_max * (1 - cos(pi * p)) / 2 with p in [0, 1]."""
    if total_steps <= 0:
        return beta_max
    start = warmup * total_steps
    if step < start:
        return 0.0
    p = min(1.0, (step - start) / max(total_steps - start, 1e-9))
    return beta_max * (1 - math.cos(math.pi * p)) / 2
