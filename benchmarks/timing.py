"""The one timing helper every benchmark uses: median wall time with device synchronisation."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def median_seconds(fn: Callable[[], object], repeats: int, device: torch.device, warmup: bool = True) -> float:
    """Median wall time of `fn` over `repeats` calls (after one untimed call when `warmup`)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
