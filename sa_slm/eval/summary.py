"""Per-model metric summary of an eval run: `items.jsonl` rows -> the `summary.json` structure.

A row is `{"model", "id", "wav", "text", "emotion", "error", "metrics": {...}}`. Every key of `metrics`
whose non-null values are all numbers is a metric (the set is open); other keys (e.g. `transcript`)
are per-item information and are not summarised.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from ..errors import SASLMError

log = logging.getLogger(__name__)
ROW_KEYS = ("model", "id")  # what every row must carry as strings (a resumed run matches rows on them)


class ItemsFileError(SASLMError, ValueError):
    """An `items.jsonl` line that is not a row; the message starts with `file:line:`."""


def read_rows(path: str | Path, drop_torn_tail: bool = False) -> list[dict]:
    """Rows of an `items.jsonl` file (blank lines skipped); a bad line raises ItemsFileError naming `file:line`.

    drop_torn_tail: a last line that is not valid JSON is what a run killed while writing leaves; it
    is dropped with a warning (its item has no row, so a resumed run evaluates it again) instead of
    raising. A bad line anywhere else is still an error.
    """
    with open(path, encoding="utf-8") as f:
        lines = [(number, line) for number, line in enumerate(f, 1) if line.strip()]
    rows = []
    for number, line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if drop_torn_tail and number == lines[-1][0]:
                log.warning("%s:%d: torn last line (a run stopped while writing it); dropped, its item "
                            "is evaluated again", path, number)
                break
            raise ItemsFileError(f"{path}:{number}: not valid JSON ({e.msg}); fix or delete the line, or "
                                 "delete the file to start over") from None
        if not isinstance(row, dict):
            raise ItemsFileError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        missing = [key for key in ROW_KEYS if not isinstance(row.get(key), str)]
        if missing:
            raise ItemsFileError(f"{path}:{number}: a row needs string {' and '.join(map(repr, missing))}; "
                                 "fix or delete the line")
        rows.append(row)
    return rows


def is_number(value: object) -> bool:
    """True for a finite int or float (bools excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_names(rows: list[dict]) -> list[str]:
    """Metric keys in order of first appearance: keys never seen with a non-numeric, non-null value."""
    seen: dict[str, bool] = {}  # name -> numeric so far
    for row in rows:
        for key, value in (row.get("metrics") or {}).items():
            numeric = value is None or isinstance(value, (int, float)) and not isinstance(value, bool)
            seen[key] = seen.get(key, True) and numeric
    return [key for key, numeric in seen.items() if numeric]


def summarise(rows: list[dict], models: list[str] | None = None,
              unavailable: dict[str, str] | None = None) -> dict:
    """The `summary.json` dict of `rows`.

    models: column order (default: order of first appearance; rows of other models are ignored).
    Per metric and model: mean and population std (ddof=0) of the non-null finite values, n their count;
    mean/std are None when n = 0. Per model, `items` counts rows, failed rows and rows whose audio was
    cut by the code budget (`truncated`; their per-word metrics are None, so no mean counts them).
    `unavailable` maps metric -> reason; a metric with no value for any model is added with a generic
    reason unless one is given.
    """
    if models is None:
        models = list(dict.fromkeys(row["model"] for row in rows))
    names = metric_names(rows)
    values: dict[str, dict[str, list[float]]] = {name: {m: [] for m in models} for name in names}
    items = {m: {"total": 0, "failed": 0, "truncated": 0} for m in models}
    for row in rows:
        model = row.get("model")
        if model not in items:
            continue
        items[model]["total"] += 1
        items[model]["failed"] += bool(row.get("error"))
        items[model]["truncated"] += bool(row.get("truncated"))  # cut by the code budget: no per-word values
        for name, value in (row.get("metrics") or {}).items():
            if name in values and is_number(value):
                values[name][model].append(float(value))

    metrics = {}
    for name in names:
        metrics[name] = {}
        for model in models:
            v = np.asarray(values[name][model])
            metrics[name][model] = {
                "mean": float(v.mean()) if v.size else None,
                "std": float(v.std()) if v.size else None,
                "n": int(v.size),
            }
    reasons = dict(unavailable or {})
    for name in names:
        if all(metrics[name][m]["n"] == 0 for m in models):
            reasons.setdefault(name, "no value in any item")
    return {"models": list(models), "metrics": metrics, "items": items, "unavailable": reasons}


def fmt(value: float | None) -> str:
    """A short display form of a number ("—" for None)."""
    if value is None:
        return "—"
    return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def cell_text(stats: dict | None) -> str:
    """'mean ± std (n)' of one metric × model cell ('— (0)' with no values)."""
    if not stats or stats.get("mean") is None:
        return f"— ({stats.get('n', 0) if stats else 0})"
    return f"{fmt(stats['mean'])} ± {fmt(stats.get('std'))} ({stats['n']})"


def summary_markdown(summary: dict) -> str:
    """A Markdown table (rows = metrics, columns = models) followed by item counts and unavailable metrics."""
    models = summary["models"]
    lines = ["| metric | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for name, per_model in summary["metrics"].items():
        lines.append(f"| {name} | " + " | ".join(cell_text(per_model.get(m)) for m in models) + " |")
    counts = summary.get("items") or {}
    if counts:
        lines += ["", "Items: " + ", ".join(
            f"{m} {counts[m]['total']} ({counts[m]['failed']} failed, {counts[m].get('truncated', 0)} cut by the "
            "code budget)" for m in models if m in counts)]
    unavailable = summary.get("unavailable") or {}
    if unavailable:
        lines += [""] + [f"- {name} unavailable: {reason}" for name, reason in unavailable.items()]
    return "\n".join(lines) + "\n"
