"""Evaluation: names from data never leave the output folder (finding 1); a torn items.jsonl, bad enum
values and repeated model names are handled before or without a traceback (finding 7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from faults import Fault, Main, cli

from sa_slm.paths import CORPUS_DIR

ECHOMIND_AUDIO = Path(__file__).resolve().parents[2] / "data" / "echomind_sample" / "audio"
FAST = {"asr": None, "critic": None, "device": "cpu", "max_items": 2, "f0_items": 0, "sampling": {"max_new_codes": 12}}


def echomind(argv: list[str]) -> int:
    from sa_slm.eval.echomind import main

    return main(argv)


def _eval_config(tmp: Path, out: Path, models: list[dict], **extra) -> Path:
    """An eval YAML (JSON is YAML) over the first two lines of the shipped corpus."""
    path = tmp / "eval.yaml"
    path.write_text(json.dumps({"manifest": str(CORPUS_DIR / "manifest.jsonl"), "output_dir": str(out),
                                "models": models, **FAST, **extra}))
    return path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# ---- EchoMind ---------------------------------------------------------------------------------
def _script_info(tmp: Path, case_ids: list[str]) -> Path:
    shutil.copytree(ECHOMIND_AUDIO, tmp / "bench" / "audio")
    cases = [{"case_id": cid, "topic": "work", "spoken_info": "happy-toned expressive voice",
              "target_audio_info": {"target_input_audio_file": "happy/id_1_happy_work_target.wav"}}
             for cid in case_ids]
    path = tmp / "bench" / "script_info.json"
    path.write_text(json.dumps(cases))
    return path


def _echomind_run(tmp: Path, case_ids: list[str]) -> tuple[Main, list[str]]:
    info = _script_info(tmp, case_ids)
    (tmp / "x_target.wav").write_bytes(b"sentinel")  # what out/../../x_target.wav names
    return echomind, ["run", "--model", "tiny", "--device", "cpu", "--script-info", str(info),
                      "--out", str(tmp / "a" / "out"), "--max-reply-tokens", "4", "--max-new-codes", "8"]


def _echomind_lost(tmp: Path, ids: list[str]) -> list[str]:
    lost = [] if (tmp / "x_target.wav").read_bytes() == b"sentinel" else ["sentinel outside the output folder"]
    stray = _tree(tmp) - {"x_target.wav", "eval.yaml"}
    lost += [f"stray file {p}" for p in stray if not p.startswith(("a/out/", "bench/"))]
    folder = tmp / "a" / "out" / "saslm" / "no"
    responses = folder / "saslm_no_output_responses.json"
    cases = json.loads(responses.read_text()) if responses.is_file() else []
    done = {f"{c['case_id']}_target" for c in cases
            if c["output_content"]["target"].get("file")
            and (folder / "happy" / c["output_content"]["target"]["file"]).is_file()}
    return lost + [i for i in ids if i not in done]


# ---- sa-slm eval ------------------------------------------------------------------------------
def _eval_lost(out: Path, models: list[str], ids=("r00_neutral", "r00_happy")) -> list[str]:
    items = out / "items.jsonl"
    rows = [json.loads(line) for line in items.read_text().splitlines()] if items.is_file() else []
    done = {(r["model"], r["id"]) for r in rows if not r.get("error") and r.get("wav") and (out / r["wav"]).is_file()}
    return [f"{m}/{i}" for m in models for i in ids if (m, i) not in done]


def _traversal_model(tmp: Path) -> tuple[Main, list[str]]:
    out = tmp / "a" / "b" / "out"
    return cli, ["eval", "--config", str(_eval_config(tmp, out, [{"name": "../../../x", "path": "tiny"}]))]


def _traversal_model_lost(tmp: Path) -> list[str]:
    stray = [f"stray file {p}" for p in _tree(tmp) if p != "eval.yaml" and not p.startswith("a/b/out/")]
    return stray + _eval_lost(tmp / "a" / "b" / "out", ["../../../x"])


def _torn_items(tmp: Path) -> tuple[Main, list[str]]:
    """A run killed while writing: r00_neutral finished (row + wav), r00_happy's row cut half way."""
    out = tmp / "out"
    wav = out / "wavs" / "tiny" / "r00_neutral.wav"
    wav.parent.mkdir(parents=True)
    shutil.copy(CORPUS_DIR / "wavs" / "r00_neutral.wav", wav)
    done = {"model": "tiny", "id": "r00_neutral", "wav": "wavs/tiny/r00_neutral.wav", "text": "x",
            "reference": "x", "emotion": "neutral", "error": None, "metrics": {"f0_mean_hz": 200.0},
            "metric_errors": []}
    torn = json.dumps({**done, "id": "r00_happy", "wav": "wavs/tiny/r00_happy.wav"})
    (out / "items.jsonl").write_text(json.dumps(done) + "\n" + torn[: len(torn) // 2])
    return cli, ["eval", "--config", str(_eval_config(tmp, out, [{"name": "tiny", "path": "tiny"}]))]


def _corrupt_items(tmp: Path) -> tuple[Main, list[str]]:
    out = tmp / "out"
    out.mkdir()
    row = json.dumps({"model": "tiny", "id": "r00_neutral", "wav": None, "error": "x", "metrics": {}})
    (out / "items.jsonl").write_text("{not json\n" + row + "\n")
    return cli, ["eval", "--config", str(_eval_config(tmp, out, [{"name": "tiny", "path": "tiny"}]))]


def _bad_value(key: str, value: str, bridge_mode: str = "vib_adaln") -> Main:
    """An eval config whose model has `bridge.mode: bridge_mode`, run with the override `key=value`."""
    def setup(tmp: Path) -> tuple[Main, list[str]]:
        models = [{"name": "tiny", "path": "tiny", "bridge": {"mode": bridge_mode}}]
        config = _eval_config(tmp, tmp / "out", models)
        return cli, ["eval", "--config", str(config), f"{key}={value}"]

    return setup


FAULTS = [
    Fault(1, "echomind: case_id ../../x and an absolute case_id",
          lambda tmp: _echomind_run(tmp, ["id_1", "../../x", str(tmp / "abs")]), r"wrote 3 response",
          exit_code=0, lost=lambda tmp: _echomind_lost(tmp, ["id_1_target", "../../x_target", f"{tmp}/abs_target"]),
          slow=True),
    Fault(1, "echomind: duplicate case_id", lambda tmp: _echomind_run(tmp, ["id_1", "id_2", "id_1"]),
          r"case #2: duplicate case_id 'id_1' \(first at case #0\); skipped", exit_code=0,
          lost=lambda tmp: _echomind_lost(tmp, ["id_1_target", "id_2_target"]), slow=True),
    Fault(1, "eval: model name ../../../x", _traversal_model, r"items:", exit_code=0, lost=_traversal_model_lost,
          slow=True),
    Fault(1, "eval: duplicate model names",
          lambda tmp: (cli, ["eval", "--config", str(_eval_config(tmp, tmp / "out", [
              {"name": "tiny", "path": "tiny"}, {"name": "tiny", "path": "random-3b"}]))]),
          r"model names must be unique.*'tiny' repeated"),
    Fault(7, "eval: torn last line of items.jsonl on resume", _torn_items,
          r"items\.jsonl:2: torn last line", exit_code=0,
          lost=lambda tmp: _eval_lost(tmp / "out", ["tiny"]), slow=True),
    Fault(7, "eval: corrupt first line of items.jsonl", _corrupt_items, r"items\.jsonl:1: not valid JSON"),
    Fault(7, "eval: bridge.mode not a mode", _bad_value("seed", "0", bridge_mode="vib"), r"intent-bridge mode 'vib'"),
    Fault(7, "eval: dtype not a dtype", _bad_value("dtype", "fp64"), r"dtype: 'fp64'"),
    Fault(7, "eval: device not a device", _bad_value("device", "gpu"), r"device: 'gpu' is not a torch device"),
]
