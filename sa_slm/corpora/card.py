"""The data card of a prepared split: what it holds (items, hours, speakers, labels, durations) and what was
left out and why. Written as `<split>.card.json` (machine-readable), `<split>.card.md` (for people) and
`<split>.durations.png` (the duration histogram)."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.manifest import KNOWN_KEYS
from ..paths import write_text_atomic
from .base import SPEAKER_LABEL, SkippedItem

MAX_LABEL_VALUES = 50  # a label with at most this many distinct values gets a histogram (counts per value)
SKIP_EXAMPLES = 5  # skipped rows shown per reason
MAX_BINS = 60  # duration bins: 1 s wide up to 60 s of longest clip, wider beyond


def skip_kind(reason: str) -> str:
    """The kind of a skip reason `<kind>: <detail>` (the whole reason when it has no colon)."""
    return reason.split(":", 1)[0].strip()


def _value_key(value: Any) -> str:
    """A label value as a histogram key: strings as they are, anything else as JSON (`true`, `3`)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass
class LabelStats:
    """How one label is spread: items holding it, distinct values, counts per value while they are few."""

    items: int = 0
    distinct: set[int] = field(default_factory=set)  # hashes of the values' keys (exact distinct count)
    counts: Counter = field(default_factory=Counter)  # kept while distinct <= MAX_LABEL_VALUES

    def add(self, value: Any) -> None:
        key = _value_key(value)
        self.items += 1
        self.distinct.add(hash(key))
        if len(self.distinct) <= MAX_LABEL_VALUES:
            self.counts[key] += 1

    def as_dict(self) -> dict[str, Any]:
        few = len(self.distinct) <= MAX_LABEL_VALUES
        counts = dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))) if few else None
        return {"items": self.items, "distinct": len(self.distinct), "counts": counts}


def duration_histogram(seconds: list[float]) -> dict[str, Any] | None:
    """Counts of clip durations in bins [k*w, (k+1)*w) (the last bin also holds its upper edge): w = 1 s
    while the longest clip is at most 60 s, else the whole number of seconds that keeps 60 bins."""
    if not seconds:
        return None
    longest = max(seconds)
    width = 1 if longest <= MAX_BINS else math.ceil(longest / MAX_BINS)
    bins = max(1, math.ceil(longest / width))
    counts, edges = np.histogram(np.asarray(seconds), bins=bins, range=(0, bins * width))
    return {"bin_seconds": width, "edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "min": float(min(seconds)), "max": float(longest), "mean": float(np.mean(seconds))}


class CardStats:
    """Collects the card's numbers while the writer goes through a split (one manifest line at a time)."""

    def __init__(self) -> None:
        self.items = 0
        self.reply_seconds: list[float] = []
        self.user_seconds = 0.0
        self.user_clips = 0
        self.default_user_text = 0
        self.labels: dict[str, LabelStats] = {}
        self.skipped: list[SkippedItem] = []

    def add(self, line: dict[str, Any], reply_seconds: float | None, user_seconds: float | None,
            default_user_text: bool) -> None:
        """One written manifest line, its audio durations (None: no such audio) and whether the writer
        filled its user text."""
        self.items += 1
        if reply_seconds is not None:
            self.reply_seconds.append(reply_seconds)
        if user_seconds is not None:
            self.user_seconds += user_seconds
            self.user_clips += 1
        self.default_user_text += int(default_user_text)
        for key, value in line.items():
            if key not in KNOWN_KEYS:
                self.labels.setdefault(key, LabelStats()).add(value)

    def card(self, **about: Any) -> dict[str, Any]:
        """The card as a JSON-ready dict; `about` (recipe, split, source, files, ...) goes first."""
        by_kind = Counter(skip_kind(s.reason) for s in self.skipped)
        examples: dict[str, list[dict]] = {}
        for s in self.skipped:
            shown = examples.setdefault(skip_kind(s.reason), [])
            if len(shown) < SKIP_EXAMPLES:
                shown.append({"where": s.where, "id": s.id, "reason": s.reason})
        reply_total = float(sum(self.reply_seconds))
        speaker = self.labels.get(SPEAKER_LABEL)
        return {
            **about,
            "items": self.items,
            "hours": reply_total / 3600,
            "reply_seconds": reply_total,
            "reply_clips": len(self.reply_seconds),
            "user_seconds": self.user_seconds,
            "user_clips": self.user_clips,
            "default_user_text_items": self.default_user_text,
            "speakers": len(speaker.distinct) if speaker else None,
            "labels": {key: stats.as_dict() for key, stats in sorted(self.labels.items())},
            "durations": duration_histogram(self.reply_seconds),
            "skipped": {"total": len(self.skipped), "by_reason": dict(by_kind.most_common()), "examples": examples},
        }


def card_markdown(card: dict[str, Any]) -> str:
    """The card for people: totals, labels, durations, skipped rows."""
    lines = [f"# Data card: {card.get('recipe')} / {card.get('split')}", ""]
    if card.get("source"):
        lines += [f"Source: `{card['source']}`", ""]
    speakers = "no speaker label" if card["speakers"] is None else str(card["speakers"])
    lines += [
        "| | |", "|---|---|",
        f"| items | {card['items']} |",
        f"| reply audio | {card['hours']:.3f} h ({card['reply_clips']} clips) |",
        f"| user audio | {card['user_seconds'] / 3600:.3f} h ({card['user_clips']} clips) |",
        f"| speakers (`{SPEAKER_LABEL}`) | {speakers} |",
        f"| skipped rows | {card['skipped']['total']} |",
    ]
    if card["default_user_text_items"]:
        lines.append(f"| items given the default user text | {card['default_user_text_items']} |")
    lines.append("")
    if card["labels"]:
        lines += ["## Labels", ""]
        for key, stats in card["labels"].items():
            if stats["counts"] is None:
                lines.append(f"- `{key}`: {stats['items']} items, {stats['distinct']} distinct values")
                continue
            shown = ", ".join(f"{value} ({count})" for value, count in stats["counts"].items())
            lines.append(f"- `{key}`: {stats['items']} items, {stats['distinct']} values: {shown}")
        lines.append("")
    durations = card["durations"]
    if durations:
        lines += ["## Reply durations", "",
                  f"{durations['min']:.2f}–{durations['max']:.2f} s, mean {durations['mean']:.2f} s "
                  f"(bins of {durations['bin_seconds']} s)", ""]
        if card.get("files", {}).get("durations_png"):
            lines += [f"![durations]({Path(card['files']['durations_png']).name})", ""]
    skipped = card["skipped"]
    if skipped["total"]:
        lines += ["## Skipped rows", ""]
        for kind, count in skipped["by_reason"].items():
            lines.append(f"- {kind}: {count}")
            lines += [f"  - `{e['where']}` ({e['id']}): {e['reason']}" for e in skipped["examples"][kind]]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def plot_durations(histogram: dict[str, Any], path: Path, title: str) -> Path:
    """The duration histogram as a PNG (matplotlib's Agg backend: no display needed), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges, counts = histogram["edges"], histogram["counts"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(edges[:-1], counts, width=histogram["bin_seconds"], align="edge", edgecolor="black", linewidth=0.5)
    ax.set_xlabel("reply duration (s)")
    ax.set_ylabel("clips")
    ax.set_title(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_card(card: dict[str, Any], json_path: Path, md_path: Path, png_path: Path) -> Path | None:
    """Write card.json, card.md and (when there is reply audio) the durations PNG; returns the PNG's path.
    A PNG left from an earlier run of a split that now has no audio is removed."""
    png = None
    if card["durations"]:
        png = plot_durations(card["durations"], png_path, f"{card.get('recipe')} / {card.get('split')}: "
                                                          f"{card['reply_clips']} clips, {card['hours']:.2f} h")
    elif png_path.exists():
        png_path.unlink()
    card.setdefault("files", {})["durations_png"] = str(png) if png else None
    write_text_atomic(json_path, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(md_path, card_markdown(card))
    return png
