"""What every benchmark shares: its common command-line options and median wall time with device sync."""

from __future__ import annotations

import argparse
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


def bench_parser(doc: str | None, repeats: int = 3) -> argparse.ArgumentParser:
    """--model, --device, --dtype and --repeats; each benchmark adds its own sizes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="preset (tiny, random-3b, random-7b), folder or hub id")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--repeats", type=int, default=repeats, help="timed calls per path (median)")
    return ap
