"""`sa-slm eval`: runs models over a manifest, writes wavs, per-item JSONL, summary and an HTML report
whose table agrees with the JSONL; bad items are reported and the rest evaluated."""

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import soundfile as sf

from sa_slm.cli import main as cli_main
from sa_slm.eval.config import EvalConfig, ModelEntry
from sa_slm.eval.runner import run_eval
from sa_slm.paths import CORPUS_DIR
from sa_slm.talker.sampling import SamplingConfig


class SummaryCells(HTMLParser):
    """(model, metric) -> data-mean of every cell of <table id="summary">."""

    def __init__(self):
        super().__init__()
        self.inside, self.cells = False, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.inside = a.get("id") == "summary"
        elif self.inside and tag == "td" and "data-metric" in a:
            self.cells[(a["data-model"], a["data-metric"])] = float(a["data-mean"]) if a["data-mean"] else None

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False


def _means_from_jsonl(path):
    values = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        for key, v in row["metrics"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v):
                values.setdefault((row["model"], key), []).append(float(v))
    return {k: float(np.mean(v)) for k, v in values.items()}


@pytest.mark.slow
def test_eval_cli_on_the_tiny_model_writes_wavs_jsonl_summary_and_a_matching_report(tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter

    logs = tmp_path / "stage1_runs"
    with SummaryWriter(str(logs / "run0")) as writer:  # what the Trainer writes during a stage
        for step in range(1, 6):
            writer.add_scalar("train/loss", 5.0 / step, step)
    out = tmp_path / "run"
    assert cli_main(["eval", "--config", "configs/eval_tiny.yaml", f"output_dir={out}", "max_items=5",
                     "sampling.max_new_codes=20", f"training_logs.stage1={logs}"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report' / 'index.html'}" in printed
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert {(r["model"], r["id"]) for r in rows} == {(m, f"r00_{e}") for m in ("reference", "add", "vib_adaln")
                                                    for e in ("neutral", "happy", "sad", "angry", "calm")}
    for r in rows:
        assert r["error"] is None, r
        wav, sr = sf.read(out / r["wav"])
        assert sr == 24_000 and len(wav) > 0
        m = r["metrics"]
        assert m["transcript"] is not None  # pocketsphinx ran
        # 20 codes cannot hold a reply and the random Talker never ends one: model rows are flagged and
        # have no WER; the recordings are whole.
        assert r["truncated"] is (r["model"] != "reference")
        if r["truncated"]:
            assert m["wer"] is None
            assert any(e.startswith("wer: audio cut by the code budget") for e in r["metric_errors"])
        else:
            assert 0 <= m["wer"]
        if r["model"] != "reference":  # the self-critic judges model columns (the reference has no "self")
            assert all(0 <= m[f"critic_{d}"] <= 1 for d in ("emotion", "prosody", "naturalness", "utility"))
        assert m["emo_align"] is None  # no emotion2vec weights here: unavailable, not guessed
    ref = {r["id"]: r["metrics"] for r in rows if r["model"] == "reference"}
    assert ref["r00_happy"]["f0_mean_hz"] > ref["r00_sad"]["f0_mean_hz"] + 40  # the recordings, measured end to end
    assert ref["r00_calm"]["speaking_rate_wps"] < ref["r00_neutral"]["speaking_rate_wps"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"] == ["reference", "add", "vib_adaln"]
    assert [summary["items"][m]["truncated"] for m in summary["models"]] == [0, 5, 5]
    assert summary["metrics"]["wer"]["add"]["n"] == 0 and summary["metrics"]["wer"]["reference"]["n"] == 5
    assert "emo_align" in summary["unavailable"]
    # The report's table is the JSONL, averaged.
    parser = SummaryCells()
    parser.feed((out / "report" / "index.html").read_text())
    expected = _means_from_jsonl(out / "items.jsonl")
    assert expected and {k for k, v in parser.cells.items() if v is not None} == set(expected)
    for key, mean in expected.items():
        assert parser.cells[key] == pytest.approx(mean, rel=1e-9, abs=1e-12), key
    assert "| f0_mean_hz |" in (out / "summary.md").read_text()
    curves = list((out / "report").glob("curves_*stage1*.png"))
    assert len(curves) == 1 and curves[0].name in (out / "report" / "index.html").read_text()


def test_bad_items_are_reported_and_the_rest_evaluated(tmp_path):
    lines = [json.loads(line) for line in (CORPUS_DIR / "manifest.jsonl").read_text().splitlines()[:3]]
    for line in lines:
        line["user_audio"] = str(CORPUS_DIR / line["user_audio"])
        line.pop("reply_audio")
    lines[0]["user_audio"] = str(tmp_path / "gone.wav")  # missing audio file
    lines[1]["reply_text"] = ""  # empty reference
    manifest = tmp_path / "eval.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{not json\n")
    cfg = EvalConfig(manifest=str(manifest), output_dir=str(tmp_path / "run"), models=[ModelEntry(name="tiny")],
                     asr=None, critic=None, sampling=SamplingConfig(max_new_codes=10))
    run = run_eval(cfg)
    rows = {r["id"]: r for r in (json.loads(x) for x in run.items.read_text().splitlines())}
    assert "gone.wav" in rows["r00_neutral"]["error"] and "file not found" in rows["r00_neutral"]["error"]
    assert "'reply_text' is missing or empty" in rows["r00_happy"]["error"]
    assert f"{manifest}:4" in rows[f"{manifest}:4"]["error"]  # the broken line, by file and line
    assert rows["r00_sad"]["error"] is None and (run.run_dir / rows["r00_sad"]["wav"]).is_file()
    # 10 codes (0.4 s) cannot hold the reply: the random Talker never ends it, so the row is flagged
    # and has no per-word measure.
    assert rows["r00_sad"]["truncated"] is True and rows["r00_sad"]["metrics"]["speaking_rate_wps"] is None
    assert any("cut by the code budget" in e for e in rows["r00_sad"]["metric_errors"])
    assert run.summary["items"]["tiny"] == {"total": 4, "failed": 3, "truncated": 1}
    html = run.report.read_text()
    assert "gone.wav" in html and "Failed items" in html
    assert "wer" in run.summary["unavailable"]


def test_item_audio_does_not_depend_on_the_batch_and_resume_keeps_finished_items(tmp_path, tiny):
    def run(out, batch_size, **kw):
        cfg = EvalConfig(manifest=str(CORPUS_DIR / "manifest.jsonl"), output_dir=str(tmp_path / out),
                         models=[ModelEntry(name="tiny")], asr=None, critic=None, max_items=3,
                         sampling=SamplingConfig(max_new_codes=12), batch_size=batch_size, **kw)
        return run_eval(cfg, loaded={"tiny": tiny})

    batched, single = run("batched", 3), run("single", 1)
    for item in ("r00_neutral", "r00_happy", "r00_sad"):
        a, _ = sf.read(batched.run_dir / "wavs" / "tiny" / f"{item}.wav")
        b, _ = sf.read(single.run_dir / "wavs" / "tiny" / f"{item}.wav")
        np.testing.assert_allclose(a, b, atol=1e-4)
    wav = batched.run_dir / "wavs" / "tiny" / "r00_happy.wav"
    stamp = wav.stat().st_mtime_ns
    again = run("batched", 3)  # resume: nothing left to do, nothing regenerated
    assert wav.stat().st_mtime_ns == stamp
    assert again.items.read_text() == batched.items.read_text()


def test_the_runner_flags_exactly_the_replies_the_code_budget_cut(tmp_path, tiny, monkeypatch):
    """`truncated` follows the Talker's per-row EOS flag: the tiny model never emits EOS within 4 codes,
    so both replies are cut; a wrapper reports the first row as ended to show the flag is per row."""
    rollouts = tiny.rollouts

    def first_row_ends(*args, **kwargs):
        out = rollouts(*args, **kwargs)
        assert not out.codes.finished.any()  # 4 codes: the budget cut every row
        out.codes.finished[0] = True
        return out

    monkeypatch.setattr(tiny, "rollouts", first_row_ends)
    cfg = EvalConfig(manifest=str(CORPUS_DIR / "manifest.jsonl"), output_dir=str(tmp_path / "run"),
                     models=[ModelEntry(name="tiny")], asr=None, critic=None, max_items=2, batch_size=2,
                     sampling=SamplingConfig(max_new_codes=4))
    run = run_eval(cfg, loaded={"tiny": tiny})
    rows = {r["id"]: r for r in (json.loads(x) for x in run.items.read_text().splitlines())}
    ended, cut = rows["r00_neutral"], rows["r00_happy"]
    assert ended["truncated"] is False and cut["truncated"] is True
    assert not any("code budget" in e for e in ended["metric_errors"])
    assert any(e.startswith("speaking_rate: audio cut by the code budget") for e in cut["metric_errors"])
    assert cut["metrics"]["speaking_rate_wps"] is None
    assert run.summary["items"]["tiny"] == {"total": 2, "failed": 0, "truncated": 1}
    assert "1 cut by the code budget" in (run.run_dir / "summary.md").read_text()
