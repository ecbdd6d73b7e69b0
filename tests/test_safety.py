"""Names taken from data never leave the output folder (finding 1), and a resumed eval survives a torn
items.jsonl (finding 7): the file-name sanitiser, EchoMind case ids, eval model names and item ids."""

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sa_slm.config import ConfigError
from sa_slm.errors import SASLMError
from sa_slm.eval.config import EvalConfig, ModelEntry
from sa_slm.eval.echomind import EchoMindModel, EchoMindWarning, run_echomind
from sa_slm.eval.report import write_report
from sa_slm.eval.runner import run_eval
from sa_slm.eval.summary import read_rows, summarise
from sa_slm.paths import CORPUS_DIR, MAX_NAME, UnsafePathError, distinct_filenames, path_inside, safe_filename
from sa_slm.talker.sampling import SamplingConfig

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "echomind_sample"
HOSTILE = ["../", "..", ".", "/etc/passwd", "a/b", "a\\b", "../../x", "C:\\Windows\\x", "a\x00b", "tab\there",
           "\x1b[31m", "", " ", "-rf", ".hidden", "a.", "CON", "con.txt", "x" * 1000, "x" * 999 + "y", "café"]


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> content)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---- the sanitiser ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE)
def test_safe_filename_is_one_bounded_component_inside_its_folder(name, tmp_path):
    stem = safe_filename(name)
    assert 0 < len(stem) <= MAX_NAME
    assert stem not in (".", "..") and not stem.startswith((".", "-")) and not stem.endswith(".")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in stem), stem
    assert safe_filename(stem) == stem  # idempotent: a sanitised name is already safe
    path = path_inside(tmp_path, name, suffix=".wav")
    assert path.parent == tmp_path and path.name == stem + ".wav"
    assert path.resolve().parent == tmp_path.resolve()


def test_safe_filename_by_hand():
    # Safe names are kept; changed ones end in the first 10 hex digits of SHA-1 of the original (stable
    # across runs and machines: no Python hash randomisation involved).
    assert safe_filename("r00_happy") == "r00_happy"
    assert safe_filename("id_1_target.v2") == "id_1_target.v2"
    assert safe_filename("../../x") == f"_._.._x-{_sha('../../x')}"
    assert safe_filename("/etc/passwd") == f"_etc_passwd-{_sha('/etc/passwd')}"
    assert safe_filename("") == f"_-{_sha('')}"
    assert safe_filename("a\x00b") == f"a_b-{_sha('a' + chr(0) + 'b')}"
    assert safe_filename("CON") == f"_CON-{_sha('CON')}"
    assert safe_filename("../../x") == "_._.._x-9bdbf20b56"  # fixed literal (sha1sum): the same name in every run
    long = safe_filename("x" * 1000)
    assert long == "x" * (MAX_NAME - 11) + f"-{_sha('x' * 1000)}" and len(long) == MAX_NAME
    assert safe_filename("x" * 1000, max_len=40) == "x" * 29 + f"-{_sha('x' * 1000)}"


def test_distinct_inputs_get_distinct_names_also_ignoring_case():
    names = HOSTILE + ["a_b", "A_B", "Item", "item", "ITEM", f"a_b-{_sha('a/b')}"]
    stems = distinct_filenames(names)
    assert len({s.casefold() for s in stems.values()}) == len(set(names))
    assert stems["Item"] == "Item" and stems["item"] == "item-2" and stems["ITEM"] == "ITEM-3"
    # a literal id that spells another id's sanitised name does not take its file
    assert stems[f"a_b-{_sha('a/b')}"] != stems["a/b"]
    assert distinct_filenames(names) == stems  # depends on the list only
    assert len({safe_filename(n) for n in HOSTILE}) == len(HOSTILE)


def test_path_inside_refuses_a_symlink_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "wavs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside"):
        path_inside(root, "wavs", "x", suffix=".wav")
    with pytest.raises(UnsafePathError, match="suffix"):
        path_inside(root, "x", suffix="/../../y")
    assert path_inside(root, "../..", "x", suffix=".wav").parent.parent == root


# ---- EchoMind ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def adapter(tiny):
    return EchoMindModel(tiny, seed=0, max_reply_tokens=6, sampling=SamplingConfig(max_new_codes=12))


def _script_info(folder: Path, case_ids: list) -> Path:
    """A script_info file beside a copy of the sample audio, one case per id (all speak the same wav)."""
    shutil.copytree(SAMPLE / "audio", folder / "audio")
    cases = [{"case_id": cid, "topic": "work", "spoken_info": "happy-toned expressive voice",
              "script": "I just got the job!",
              "target_audio_info": {"target_input_audio_file": "happy/id_1_happy_work_target.wav",
                                    "target_response": "Congratulations!"}} for cid in case_ids]
    path = folder / "script_info.json"
    path.write_text(json.dumps(cases))
    return path


def test_echomind_case_ids_cannot_write_or_delete_outside_the_output_folder(adapter, tmp_path):
    info = _script_info(tmp_path / "bench", ["id_1", "../../x", str(tmp_path / "abs")])
    out = tmp_path / "a" / "out"
    sentinel = tmp_path / "a" / "x_saslm_response_target.wav"  # what <cue folder>/../../x_... would name
    sentinel.parent.mkdir(parents=True)
    sentinel.write_bytes(b"keep me")
    before = _tree(tmp_path)
    responses = run_echomind(adapter, info, out, progress=False)
    assert sentinel.read_bytes() == b"keep me"
    outside = {k: v for k, v in _tree(tmp_path).items() if not k.startswith("a/out/")}
    assert outside == before  # nothing written, changed or deleted outside `out`
    # Upstream's names where they are plain (id_1), the sanitiser's (name + hash) where they are not.
    stems = ["id_1_saslm_response_target", "../../x_saslm_response_target",
             f"{tmp_path}/abs_saslm_response_target"]
    names = [safe_filename(stem) + ".wav" for stem in stems]
    assert names[0] == "id_1_saslm_response_target.wav" and names[1].endswith(f"-{_sha(stems[1])}.wav")
    assert responses == out / "saslm" / "no" / "saslm_no_output_responses.json"
    written = {k for k in _tree(out)}
    assert written == {"saslm/no/saslm_no_output_responses.json", *(f"saslm/no/happy/{n}" for n in names)}
    for name in names:
        assert sf.info(str(out / "saslm" / "no" / "happy" / name)).samplerate == 24_000
    bench = json.loads(responses.read_text())
    assert [c["output_content"]["target"]["file"] for c in bench] == names


def test_echomind_duplicate_case_id_second_is_skipped_and_reported(adapter, tmp_path):
    info = _script_info(tmp_path / "bench", ["id_1", "id_2", "id_1"])
    with pytest.warns(EchoMindWarning, match=r"case #2: duplicate case_id 'id_1' \(first at case #0\)"):
        responses = run_echomind(adapter, info, tmp_path / "out", progress=False)
    bench = json.loads(responses.read_text())
    assert [c["case_id"] for c in bench] == ["id_1", "id_2", "id_1"]
    answered = [c["output_content"].get("target", {}).get("file") for c in bench]
    assert answered == ["id_1_saslm_response_target.wav", "id_2_saslm_response_target.wav", None]


# ---- sa-slm eval ------------------------------------------------------------------------------
def _manifest(path: Path, ids: list[str]) -> Path:
    """The first len(ids) corpus lines under new ids, audio paths made absolute."""
    lines = [json.loads(line) for line in (CORPUS_DIR / "manifest.jsonl").read_text().splitlines()][: len(ids)]
    for line, item_id in zip(lines, ids):
        line["id"] = item_id
        for key in ("user_audio", "reply_audio"):
            line[key] = str(CORPUS_DIR / line[key])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _cfg(tmp_path: Path, out: Path, ids: list[str], names=("tiny",), **kw) -> EvalConfig:
    return EvalConfig(manifest=str(_manifest(tmp_path / "m.jsonl", ids)), output_dir=str(out),
                      models=[ModelEntry(name=n) for n in names], asr=None, critic=None, f0_items=0,
                      sampling=SamplingConfig(max_new_codes=12), **kw)


def test_eval_model_name_cannot_write_outside_output_dir(tiny, tmp_path):
    name = "../../../x"
    out = tmp_path / "a" / "b" / "out"
    cfg = _cfg(tmp_path, out, ["r00_neutral"], names=[name])
    before = _tree(tmp_path)
    run = run_eval(cfg, loaded={name: tiny})
    outside = {k: v for k, v in _tree(tmp_path).items() if not k.startswith("a/b/out/")}
    assert outside == before
    row = json.loads(run.items.read_text())
    assert row["model"] == name and row["error"] is None
    assert row["wav"] == f"wavs/_._.._.._x-{_sha(name)}/r00_neutral.wav" and (out / row["wav"]).is_file()


def test_eval_ids_that_sanitise_alike_keep_distinct_wavs(tiny, tmp_path):
    ids = ["a/b", f"a_b-{_sha('a/b')}", f"a_b-{_sha('a/b')[:8]}", "Item", "item"]
    run = run_eval(_cfg(tmp_path, tmp_path / "out", ids), loaded={"tiny": tiny})
    rows = read_rows(run.items)
    assert [r["id"] for r in rows] == ids and all(r["error"] is None for r in rows)
    wavs = [r["wav"] for r in rows]
    assert len({w.casefold() for w in wavs}) == len(ids)
    assert all(sf.info(str(tmp_path / "out" / w)).frames > 0 for w in wavs)
    assert sorted(p.name for p in (tmp_path / "out" / "wavs" / "tiny").iterdir()) == sorted(Path(w).name for w in wavs)


def test_duplicate_model_names_fail_before_loading(tmp_path):
    with pytest.raises(ConfigError, match=r"model names must be unique.*'base'"):
        EvalConfig(manifest="m.jsonl", models=[ModelEntry(name="base"), ModelEntry(name="base")])


@pytest.mark.parametrize("key, value, message", [("dtype", "fp64", "dtype"), ("device", "gpu", "device"),
                                                 ("device", "cuda:x", "device")])
def test_invalid_eval_enum_values_are_config_errors(key, value, message):
    with pytest.raises(ConfigError, match=message):
        EvalConfig(manifest="m.jsonl", **{key: value})


def test_eval_device_missing_on_this_machine_fails_before_loading(tmp_path, monkeypatch):
    import torch

    from sa_slm.facade import SASLM

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(SASLM, "from_pretrained", lambda *a, **k: pytest.fail("model loaded before validation"))
    with pytest.raises(SASLMError, match=r"^device cuda: no CUDA device is visible .*use device cpu$"):
        run_eval(_cfg(tmp_path, tmp_path / "out", ["r00_neutral"], device="cuda"))


def test_torn_last_line_of_items_jsonl_is_redone_on_resume(tiny, tmp_path, caplog):
    ids = ["r00_neutral", "r00_happy", "r00_sad"]
    cfg = _cfg(tmp_path, tmp_path / "out", ids)
    first = run_eval(cfg, loaded={"tiny": tiny})
    full = first.items.read_text()
    lines = full.splitlines(keepends=True)
    torn = "".join(lines[:2]) + lines[2][: len(lines[2]) // 2]  # a run killed while writing the third row
    first.items.write_text(torn)
    redone = tmp_path / "out" / "wavs" / "tiny" / "r00_sad.wav"
    kept = tmp_path / "out" / "wavs" / "tiny" / "r00_happy.wav"
    redone.unlink()
    stamp = kept.stat().st_mtime_ns
    with caplog.at_level(logging.WARNING):
        again = run_eval(cfg, loaded={"tiny": tiny})
    assert f"{first.items}:3: torn last line" in caplog.text
    rows = read_rows(again.items)
    assert [r["id"] for r in rows] == ids and all(r["error"] is None for r in rows)
    assert redone.is_file() and kept.stat().st_mtime_ns == stamp  # only the torn item was redone
    for row, before in zip(rows, map(json.loads, full.splitlines())):  # the rows of the uninterrupted run
        assert {k: v for k, v in row.items() if k != "metrics"} == {k: v for k, v in before.items() if k != "metrics"}
        numbers = {k for k, v in before["metrics"].items() if isinstance(v, float)}
        assert {k: row["metrics"][k] for k in numbers} == pytest.approx({k: before["metrics"][k] for k in numbers},
                                                                        rel=1e-3, abs=1e-3)


def test_corrupt_items_jsonl_line_names_file_and_line(tmp_path):
    from sa_slm.eval.summary import ItemsFileError

    items = tmp_path / "items.jsonl"
    good = json.dumps({"model": "m", "id": "a", "wav": None, "error": None, "metrics": {}})
    items.write_text(good + "\n{broken\n" + good + "\n")
    with pytest.raises(ItemsFileError, match=rf"^{items}:2: not valid JSON"):
        read_rows(items)
    items.write_text(good + "\n" + json.dumps({"model": "m"}) + "\n")
    with pytest.raises(ItemsFileError, match=rf"^{items}:2: .*'id'"):
        read_rows(items)
    assert issubclass(ItemsFileError, SASLMError)


def test_report_does_not_link_a_wav_outside_the_run(tmp_path):
    secret = tmp_path / "secret.wav"
    sf.write(secret, np.zeros(2400, dtype=np.float32), 24_000)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows = [{"model": "m", "id": "a", "wav": os.path.relpath(secret, run_dir), "error": None, "metrics": {}}]
    index = write_report(run_dir, rows, summarise(rows), f0_items=1)
    html = index.read_text()
    assert "<audio" not in html and not list((run_dir / "report").glob("f0_*.png"))
