"""Self-contained HTML report of an eval run: `RUN/report/index.html` plus PNG plots beside it.

Plots use matplotlib's Agg canvas on `Figure` objects (no pyplot, so no global state and nothing to
show or close). All text taken from the data is HTML-escaped; plot file names made from metric, item
and stage names pass through `sa_slm.paths.safe_filename`, and a row's wav outside the run folder is
treated as missing (never linked or read).
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ..metrics.units import METRIC_BETTER, METRIC_UNITS
from ..paths import distinct_filenames, is_inside, path_inside, safe_filename
from .curves import new_figure, plot_curves, read_scalars
from .summary import cell_text, fmt, is_number, metric_names

PLOT_PREFIXES = ("dist_", "f0_", "curves_")
PLOT_NAME = 60  # characters of the data-derived part of a plot's file name

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #8a5a00; }
.error { color: #b00020; }
.metrics { font-size: 0.85em; white-space: nowrap; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.25em; }
audio { width: 220px; }
"""


def write_report(run_dir: Path, rows: list[dict], summary: dict, training_logs: dict[str, Path] | None = None,
                 f0_items: int = 3, title: str = "SA-SLM evaluation") -> Path:
    """Write `run_dir/report/index.html` (and its PNGs) and return its path.

    rows: the `items.jsonl` rows; summary: the `summary.json` dict; training_logs: stage -> directory with
    TensorBoard event files (missing or unreadable logs get a note); f0_items: how many items get F0 plots.
    """
    run_dir = Path(run_dir)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):  # plots of an earlier report of this run
        if old.name.startswith(PLOT_PREFIXES):
            old.unlink()
    models = list(summary.get("models") or [])
    models += [m for m in dict.fromkeys(row.get("model") for row in rows) if m not in models]

    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>Run: <code>{escape(run_dir.name)}</code> · models: {escape(', '.join(map(str, models)))}</p>",
        _summary_section(summary),
        _failed_section(rows),
        _unavailable_section(summary),
        _distributions_section(rows, models, out),
        _f0_section(run_dir, rows, models, out, f0_items),
        _curves_section(training_logs, out),
        _items_section(run_dir, rows, models, out),
    ]
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _img(path: Path, alt: str) -> str:
    return f'<img src="{escape(quote(path.name))}" alt="{escape(alt)}">'


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _summary_section(summary: dict) -> str:
    """Metrics × models table; each cell carries the exact numbers as data-* attributes ('' for null)."""
    models = summary.get("models") or []
    head = "".join(f"<th>{escape(str(m))}</th>" for m in models)
    lines = ["<h2>Summary</h2>", '<table id="summary">', f"<thead><tr><th>metric</th>{head}</tr></thead>", "<tbody>"]
    for metric, per_model in (summary.get("metrics") or {}).items():
        cells = []
        for model in models:
            stats = per_model.get(model) or {}
            attrs = {"model": model, "metric": metric, "mean": stats.get("mean"), "std": stats.get("std"),
                     "n": stats.get("n", 0)}
            data = " ".join(f'data-{k}="{escape("" if v is None else repr(v) if isinstance(v, float) else str(v))}"'
                            for k, v in attrs.items())
            cells.append(f'<td class="num" {data}>{escape(cell_text(stats))}</td>')
        unit = METRIC_UNITS.get(metric, "")
        better = f", {METRIC_BETTER[metric]} is better" if metric in METRIC_BETTER else ""
        label = f'{escape(metric)}<br><small>{escape(unit + better)}</small>' if unit else escape(metric)
        lines.append(f'<tr><th scope="row">{label}</th>{"".join(cells)}</tr>')
    lines.append("</tbody></table>")
    counts = summary.get("items") or {}
    if counts:
        lines.append('<table id="items"><thead><tr><th>model</th><th>items</th><th>failed</th></tr></thead><tbody>')
        for model, c in counts.items():
            lines.append(f'<tr><td>{escape(str(model))}</td><td class="num">{c.get("total", 0)}</td>'
                         f'<td class="num">{c.get("failed", 0)}</td></tr>')
        lines.append("</tbody></table>")
    return "\n".join(lines)


def _failed_section(rows: list[dict]) -> str:
    failed = [row for row in rows if row.get("error")]
    if not failed:
        return "<h2>Failed items</h2>\n<p>None.</p>"
    lines = ["<h2>Failed items</h2>", '<table id="failed"><thead><tr><th>model</th><th>item</th><th>error</th>'
             "</tr></thead><tbody>"]
    for row in failed:
        lines.append(f'<tr><td>{escape(str(row.get("model")))}</td><td>{escape(str(row.get("id")))}</td>'
                     f'<td class="error">{escape(str(row["error"]))}</td></tr>')
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _unavailable_section(summary: dict) -> str:
    unavailable = summary.get("unavailable") or {}
    if not unavailable:
        return ""
    items = "".join(f"<li><b>{escape(str(name))}</b>: {escape(str(reason))}</li>" for name, reason in unavailable.items())
    return f'<h2>Unavailable metrics</h2>\n<ul id="unavailable">{items}</ul>'


def _distributions_section(rows: list[dict], models: list, out: Path) -> str:
    """One PNG per numeric metric: per-model box plot with the individual values on top."""
    parts = ["<h2>Metric distributions</h2>"]
    for i, metric in enumerate(metric_names(rows)):
        values = {m: [float(v) for row in rows if row.get("model") == m
                      and is_number(v := (row.get("metrics") or {}).get(metric))] for m in models}
        if not any(values.values()):
            parts.append(_note(f"{metric}: no values."))
            continue
        fig = new_figure(1.6 + 1.2 * len(models), 3.0)
        ax = fig.add_subplot()
        filled = [(pos, v) for pos, v in enumerate(values.values()) if v]
        ax.boxplot([v for _, v in filled], positions=[p for p, _ in filled], widths=0.5, showfliers=False)
        for pos, v in filled:
            ax.scatter(pos + np.linspace(-0.12, 0.12, len(v)), v, s=10, alpha=0.6, zorder=3)
        ax.set_xticks(range(len(models)), [f"{m}\n(n={len(values[m])})" for m in models])
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
        path = path_inside(out, f"dist_{i:02d}_{safe_filename(metric, PLOT_NAME)}", suffix=".png")
        fig.savefig(path, dpi=90)
        parts.append(_img(path, f"distribution of {metric}"))
    return "\n".join(parts)


def _wav_path(run_dir: Path, row: dict) -> Path | None:
    wav = row.get("wav")
    if not wav:
        return None
    path = run_dir / wav
    return path if is_inside(run_dir, Path(wav)) and path.is_file() else None


def _f0_section(run_dir: Path, rows: list[dict], models: list, out: Path, f0_items: int) -> str:
    """F0 contours (Praat, 10 ms frames, gaps where unvoiced) of the first `f0_items` items with audio,
    one line per model."""
    import soundfile as sf

    from ..prosody import pitch_track

    parts = ["<h2>F0 contours</h2>"]
    ids = [i for i in dict.fromkeys(row.get("id") for row in rows)
           if any(_wav_path(run_dir, row) for row in rows if row.get("id") == i)][:max(f0_items, 0)]
    for k, item_id in enumerate(ids):
        fig = new_figure(6.5, 2.8)
        ax = fig.add_subplot()
        plotted = 0
        for model in models:
            row = next((r for r in rows if r.get("id") == item_id and r.get("model") == model), None)
            path = _wav_path(run_dir, row) if row else None
            if path is None:
                continue
            try:
                wav, sr = sf.read(path, dtype="float32", always_2d=True)
                times, f0 = pitch_track(wav.mean(axis=1), sr)
            except Exception as e:  # an unreadable wav costs one line, not the report
                parts.append(_note(f"{model}/{item_id}: F0 failed ({type(e).__name__}: {e})"))
                continue
            voiced = int((f0 > 0).sum())
            ax.plot(times, np.where(f0 > 0, f0, np.nan), label=f"{model} ({voiced} voiced frames)")
            plotted += 1
        if not plotted:
            parts.append(_note(f"{item_id}: no F0 contour."))
            continue
        ax.set_xlabel("time (s); gaps are unvoiced")
        ax.set_ylabel("F0 (Hz)")
        ax.set_title(str(item_id))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        path = path_inside(out, f"f0_{k:02d}_{safe_filename(item_id, PLOT_NAME)}", suffix=".png")
        fig.savefig(path, dpi=90)
        parts.append(_img(path, f"F0 contours of {item_id}"))
    if not ids:
        parts.append(_note("No item has audio."))
    return "\n".join(parts)


def _curves_section(training_logs: dict[str, Path] | None, out: Path) -> str:
    """One PNG of loss-like curves per stage; a note for a log that is missing, empty or unreadable."""
    parts = ["<h2>Training curves</h2>"]
    if not training_logs:
        return "\n".join(parts + [_note("No training logs given.")])
    names = distinct_filenames((f"curves_{stage}" for stage in training_logs), PLOT_NAME)
    for stage, log_dir in training_logs.items():
        if not Path(log_dir).exists():
            parts.append(_note(f"{stage}: no training log at {log_dir}."))
            continue
        try:
            scalars = read_scalars(log_dir)
            png = path_inside(out, names[f"curves_{stage}"], suffix=".png")
            path = plot_curves(scalars, png, str(stage)) if scalars else None
        except Exception as e:  # a corrupt event file costs one note, not the report
            parts.append(_note(f"{stage}: could not read training log {log_dir} ({type(e).__name__}: {e})."))
            continue
        if path is None:
            parts.append(_note(f"{stage}: no scalars in {log_dir}."))
        else:
            parts.append(f"<h3>{escape(str(stage))}</h3>\n" + _img(path, f"training curves of {stage}"))
    return "\n".join(parts)


def _items_section(run_dir: Path, rows: list[dict], models: list, out: Path) -> str:
    """Every row, grouped by item: audio player, text, string metrics (e.g. transcript), numeric metrics."""
    numeric = metric_names(rows)
    textual = list(dict.fromkeys(k for row in rows for k in (row.get("metrics") or {}) if k not in numeric))
    order = {item_id: i for i, item_id in enumerate(dict.fromkeys(row.get("id") for row in rows))}
    model_rank = {m: i for i, m in enumerate(models)}
    head = "".join(f"<th>{escape(h)}</th>" for h in ["item", "model", "emotion", "text", "audio", *textual,
                                                     "metrics", "error"])
    lines = ["<h2>Items</h2>", f'<table id="per-item"><thead><tr>{head}</tr></thead><tbody>']
    for row in sorted(rows, key=lambda r: (order[r.get("id")], model_rank.get(r.get("model"), len(models)))):
        metrics = row.get("metrics") or {}
        path = _wav_path(run_dir, row)
        if path is not None:
            src = quote(os.path.relpath(path, out).replace(os.sep, "/"))
            audio = f'<audio controls preload="none" src="{escape(src)}"></audio>'
        else:
            audio = f'<span class="note">{escape("missing: " + str(row["wav"]) if row.get("wav") else "no audio")}</span>'
        shown = "<br>".join(f"{escape(k)} {escape(fmt(float(metrics[k])))}" for k in numeric if is_number(metrics.get(k)))
        cells = [row.get("id"), row.get("model"), row.get("emotion") or "", row.get("text") or ""]
        tds = "".join(f"<td>{escape(str(c))}</td>" for c in cells) + f"<td>{audio}</td>"
        tds += "".join(f"<td>{escape('' if metrics.get(k) is None else str(metrics[k]))}</td>" for k in textual)
        tds += f'<td class="metrics">{shown}</td><td class="error">{escape(str(row.get("error") or ""))}</td>'
        lines.append(f"<tr>{tds}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)
