"""Eval summary, training-curve reading and the HTML report, on real wavs and real TensorBoard event files."""

import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from sa_slm.eval.curves import read_scalars
from sa_slm.eval.report import write_report
from sa_slm.eval.summary import read_rows, summarise, summary_markdown

CORPUS = Path(__file__).resolve().parents[1] / "data" / "tiny_corpus" / "wavs"
ERROR = 'talker: <codec> overflow & "bad" input'
EMO_REASON = "emotion2vec not installed <pip install funasr>"


def _row(model, item, wav=True, error=None, **metrics):
    base = {"wer": None, "transcript": None, "f0_mean_hz": None, "emo_align": None, "critic_emotion": None}
    row = {"model": model, "id": item, "text": f"text of {item}", "emotion": item.split("_")[1], "error": error,
           "metrics": {**base, **metrics}}
    if wav:
        row["wav"] = f"wavs/{model}/{item}.wav"
    return row


@pytest.fixture()
def run(tmp_path):
    """A RUN folder with real wavs, items.jsonl rows (nulls and one failed item) and their summary."""
    rows = [
        _row("base", "r00_happy", wer=0.1, transcript="hello <there>", f0_mean_hz=200.0, critic_emotion=0.5),
        _row("base", "r00_sad", wer=0.3, transcript="so sad", f0_mean_hz=180.0),
        _row("base", "r01_happy", transcript="yay", f0_mean_hz=220.0, critic_emotion=0.7),
        _row("stage3", "r00_happy", wer=0.0, transcript="hello there", f0_mean_hz=230.0, critic_emotion=0.9),
        _row("stage3", "r00_sad", wer=0.2, transcript="so sad", f0_mean_hz=170.0, critic_emotion=0.6),
        _row("stage3", "r01_happy", wav=False, error=ERROR),
    ]
    for row in rows:
        if "wav" in row:
            (tmp_path / row["wav"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(CORPUS / f"{row['id']}.wav", tmp_path / row["wav"])
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = summarise(read_rows(tmp_path / "items.jsonl"), ["base", "stage3"], unavailable={"emo_align": EMO_REASON})
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path, rows, summary


def _write_events(log_dir: Path, points: dict[int, float], wall0: float) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    for step, value in points.items():
        writer.add_scalar("train/loss", value, step, walltime=wall0 + step)
        writer.add_scalar("train/learning_rate", 1e-4, step, walltime=wall0 + step)
    writer.close()


@pytest.fixture()
def training_log(tmp_path):
    """stage1-like output: a first run (steps 1-10) and a resumed run (steps 6-12) in two event files."""
    runs = tmp_path / "stage1" / "checkpoints" / "runs"
    _write_events(runs / "Jan01_00-00-00_host", {s: 10.0 - s for s in range(1, 11)}, wall0=1000.0)
    _write_events(runs / "Jan01_01-00-00_host", {s: 100.0 + s for s in range(6, 13)}, wall0=2000.0)
    return tmp_path / "stage1"


class _Page(HTMLParser):
    """Collects summary cells, audio/img srcs and the page text."""

    def __init__(self):
        super().__init__()
        self.cells, self.audio, self.images, self.text = [], [], [], []
        self._table, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
        elif tag == "td" and self._table == "summary":
            self._cell = {**attrs, "text": ""}
            self.cells.append(self._cell)
        elif tag == "audio":
            self.audio.append(attrs["src"])
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell["text"] += data


def test_summarise_by_hand(run):
    _, rows, summary = run
    m = summary["metrics"]
    assert summary["models"] == ["base", "stage3"]
    assert set(m) == {"wer", "f0_mean_hz", "emo_align", "critic_emotion"}  # transcript is text, not a metric
    assert m["wer"]["base"] == pytest.approx({"mean": 0.2, "std": 0.1, "n": 2})
    assert m["wer"]["stage3"] == pytest.approx({"mean": 0.1, "std": 0.1, "n": 2})  # failed item's null ignored
    assert m["f0_mean_hz"]["base"] == pytest.approx({"mean": 200.0, "std": math.sqrt(800 / 3), "n": 3})
    assert m["f0_mean_hz"]["stage3"] == pytest.approx({"mean": 200.0, "std": 30.0, "n": 2})
    assert m["critic_emotion"]["base"] == pytest.approx({"mean": 0.6, "std": 0.1, "n": 2})
    assert m["critic_emotion"]["stage3"] == pytest.approx({"mean": 0.75, "std": 0.15, "n": 2})
    assert m["emo_align"]["base"] == {"mean": None, "std": None, "n": 0}
    assert summary["items"] == {"base": {"total": 3, "failed": 0, "truncated": 0},
                                "stage3": {"total": 3, "failed": 1, "truncated": 0}}
    assert summary["unavailable"] == {"emo_align": EMO_REASON}
    assert json.loads(json.dumps(summary)) == summary
    md = summary_markdown(summary)
    assert "| wer | 0.2 ± 0.1 (2) | 0.1 ± 0.1 (2) |" in md
    assert "| emo_align | — (0) | — (0) |" in md


def test_read_scalars_merges_resumed_runs(training_log):
    scalars = read_scalars(training_log)
    loss = dict(scalars["train/loss"])
    assert sorted(loss) == list(range(1, 13))
    assert [loss[s] for s in (1, 5)] == [9.0, 5.0]  # first run only
    assert [loss[s] for s in (6, 10, 12)] == [106.0, 110.0, 112.0]  # resumed run wins on overlap
    assert scalars["train/learning_rate"][0] == (1, pytest.approx(1e-4))
    assert read_scalars(training_log.parent / "missing") == {}


def test_report(run, training_log):
    run_dir, rows, summary = run
    index = write_report(run_dir, read_rows(run_dir / "items.jsonl"), summary,
                         training_logs={"stage1": training_log, "stage3": run_dir / "no_such_stage"})
    assert index == run_dir / "report" / "index.html"
    raw = index.read_text(encoding="utf-8")
    page = _Page()
    page.feed(raw)
    text = "".join(page.text)

    # summary table: every model × metric cell, against the summary and against the rows themselves
    cells = {(c["data-model"], c["data-metric"]): c for c in page.cells}
    assert len(cells) == 2 * len(summary["metrics"])
    for metric, per_model in summary["metrics"].items():
        for model, stats in per_model.items():
            cell = cells[(model, metric)]
            values = [r["metrics"][metric] for r in rows if r["model"] == model and r["metrics"][metric] is not None]
            assert int(cell["data-n"]) == stats["n"] == len(values)
            if values:
                assert float(cell["data-mean"]) == stats["mean"] == pytest.approx(np.mean(values))
                assert float(cell["data-std"]) == stats["std"] == pytest.approx(np.std(values))
                assert cell["text"].startswith(f"{stats['mean']:.4g} ± ")
            else:
                assert cell["data-mean"] == "" and stats["mean"] is None

    # audio players point at the copied wavs; the failed item has none
    assert len(page.audio) == 5
    for src in page.audio:
        assert src.startswith("../wavs/")
        assert (index.parent / unquote(src)).resolve().is_file()

    # plots: one per metric with values, F0 for 3 items, curves for stage1
    images = set(page.images)
    for src in images:
        assert (index.parent / src).stat().st_size > 1000
    assert sum(s.startswith("dist_") for s in images) == 3  # emo_align has no values
    assert sum(s.startswith("f0_") for s in images) == 3
    assert "curves_stage1.png" in images
    assert "stage3: no training log at" in text

    # failed item, unavailable reason and transcripts, escaped
    assert ERROR in text and EMO_REASON in text and "hello <there>" in text
    assert "<codec>" not in raw and "&lt;codec&gt; overflow &amp; &quot;bad&quot;" in raw
    assert "<there>" not in raw and "<pip" not in raw


def test_report_without_logs_or_audio(run):
    run_dir, rows, summary = run
    write_report(run_dir, rows, summary)
    assert list((run_dir / "report").glob("f0_*.png"))
    shutil.rmtree(run_dir / "wavs")
    (run_dir / "empty_log").mkdir()
    index = write_report(run_dir, rows, summary, training_logs={"stage1": run_dir / "empty_log"}, f0_items=2)
    page = _Page()
    page.feed(index.read_text(encoding="utf-8"))
    text = "".join(page.text)
    assert page.audio == [] and not any(s.startswith(("f0_", "curves_")) for s in page.images)
    assert "stage1: no scalars in" in text and "No item has audio." in text
    assert not list((run_dir / "report").glob("f0_*.png"))  # stale plots of the first report removed
