"""KL weight schedule of the intent bridge: 0 for the warm-up fraction of training, then a cosine ramp
to its maximum (the paper's beta: 0 for the first 10 % of steps, then up to 0.5)."""

from __future__ import annotations

import math


def kl_weight_at(step: int, total_steps: int, maximum: float = 0.5, warmup: float = 0.1) -> float:
    """w(step): 0 while step < warmup * total, then maximum * (1 - cos(pi * p)) / 2 with p in [0, 1]."""
    if total_steps <= 0:
        return maximum
    start = warmup * total_steps
    if step < start:
        return 0.0
    p = min(1.0, (step - start) / max(total_steps - start, 1e-9))
    return maximum * (1 - math.cos(math.pi * p)) / 2
