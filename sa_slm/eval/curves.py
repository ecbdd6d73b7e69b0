"""Training curves from the TensorBoard event files the HF Trainer writes (`<out>/checkpoints/runs/*/`)."""

from __future__ import annotations

import re
from pathlib import Path

LOSS_LIKE = re.compile(r"loss|reward|utility", re.IGNORECASE)


def event_files(log_dir: str | Path) -> list[Path]:
    """Event files under `log_dir` (searched recursively; `log_dir` may also be one file), sorted by path."""
    log_dir = Path(log_dir)
    if log_dir.is_file():
        return [log_dir]
    return sorted(p for p in log_dir.rglob("events.out.tfevents.*") if p.is_file())


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] sorted by step, over every event file under `log_dir`.

    Runs are merged: where several events share a tag and step (a resumed run writes a second file),
    the last one written (latest wall time) wins. Missing directory or no event files -> {}.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    latest: dict[str, dict[int, tuple[tuple[float, int, int], float]]] = {}
    for file_index, path in enumerate(event_files(log_dir)):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            per_step = latest.setdefault(tag, {})
            for position, event in enumerate(acc.Scalars(tag)):
                order = (event.wall_time, file_index, position)
                if event.step not in per_step or order > per_step[event.step][0]:
                    per_step[event.step] = (order, float(event.value))
    return {tag: [(step, value) for step, (_, value) in sorted(per_step.items())]
            for tag, per_step in latest.items()}


def loss_like(scalars: dict[str, list[tuple[int, float]]]) -> list[str]:
    """Tags worth plotting as curves: names with loss/reward/utility and more than one point
    (single-point tags such as `train/train_loss` are end-of-training summaries)."""
    return [tag for tag, points in scalars.items() if LOSS_LIKE.search(tag) and len(points) > 1]


def new_figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (no pyplot: no global state, nothing to show or close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_curves(scalars: dict[str, list[tuple[int, float]]], path: str | Path, title: str) -> Path | None:
    """One PNG with a panel per loss-like tag (all tags if none is loss-like); None if nothing to plot."""
    tags = loss_like(scalars) or [tag for tag, points in scalars.items() if points]
    if not tags:
        return None
    cols = min(3, len(tags))
    rows = -(-len(tags) // cols)
    fig = new_figure(4.2 * cols, 2.8 * rows)
    for i, tag in enumerate(tags):
        ax = fig.add_subplot(rows, cols, i + 1)
        steps, values = zip(*scalars[tag])
        ax.plot(steps, values, marker="." if len(steps) < 30 else None)
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.savefig(path, dpi=90)
    return Path(path)
