"""The data audit before training (decode once, cache, skip and list bad items) and the collators' run-time
drop of an item whose audio fails after the audit (finding 4)."""

from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np
import pytest
import torch

import sa_slm.data.audit as audit
from faults.f_data import BAD_ID, codes_out_of_range, corpus_manifest, garbage_reply, long_user
from sa_slm.codec.config import Stage0Config
from sa_slm.config import ConfigError, load_config
from sa_slm.data import (PromptCollator, TeacherForcingCollator, apply_audit, audit_examples, audit_manifest,
                         read_manifest, user_audio_limits)
from sa_slm.errors import SASLMError
from sa_slm.paths import CORPUS_DIR
from sa_slm.sft.config import SFTConfig
from sa_slm.uapo.config import UAPOConfig

CORPUS_FILES = 48  # distinct wavs of manifest_codes.jsonl: 8 questions + 40 replies


@pytest.fixture()
def decodes(monkeypatch):
    """Count the files the audit decodes (the real `load_audio` still runs)."""
    calls: list[str] = []
    real = audit.load_audio

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(audit, "load_audio", counting)
    return calls


def test_undecodable_clip_is_skipped_listed_and_counted(tmp_path, caplog):
    manifest = corpus_manifest(tmp_path, garbage_reply)
    result = audit_manifest(manifest, codebook_size=8448, max_audio_seconds=30.0, progress=False)
    assert (len(result.good), len(result.bad), result.total) == (39, 1, 40)
    bad = result.bad[0]
    assert (bad.where, bad.id) == (f"{manifest}:13", BAD_ID)
    assert bad.problem.startswith("'reply_audio' ") and "garbage.wav: cannot decode audio" in bad.problem
    assert BAD_ID not in {ex.id for ex in result.good}

    with caplog.at_level(logging.INFO, logger="sa_slm.data.audit"):
        good = apply_audit(result, "skip", tmp_path / "out", manifest)
    assert good == result.good
    rows = [json.loads(line) for line in (tmp_path / "out" / "audit.jsonl").read_text().splitlines()]
    assert rows[0] == {"manifest": str(manifest), "items": 40, "good": 39, "skipped": 1}
    assert rows[1:] == [{"where": bad.where, "id": BAD_ID, "problem": bad.problem}]
    assert f"audit: 1 of 40 items skipped (see {tmp_path / 'out' / 'audit.jsonl'})" in caplog.text

    with pytest.raises(SASLMError, match=rf"^1 of 40 items of {manifest} are bad: {manifest}:13: 'reply_audio'") as err:
        apply_audit(result, "error", tmp_path / "out", manifest)
    assert "\n" not in str(err.value)


def test_bad_lines_and_codes_out_of_range_are_bad_items_too(tmp_path):
    manifest = corpus_manifest(tmp_path, codes_out_of_range)
    with manifest.open("a") as f:
        f.write("{not json\n")
    result = audit_manifest(manifest, codebook_size=8448, progress=False)
    assert [(b.where, b.id) for b in result.bad] == [(f"{manifest}:13", BAD_ID), (f"{manifest}:41", f"{manifest}:41")]
    assert "'reply_codes' holds 99999, outside the codec vocabulary 0..8447" in result.bad[0].problem
    assert "not valid JSON" in result.bad[1].problem
    # Examples given directly (as `sa-slm doctor` does) get the reader's own range check.
    examples, _ = read_manifest(manifest)
    direct = audit_examples(examples, codebook_size=8448, progress=False)
    assert [b.id for b in direct.bad] == [BAD_ID] and "holds 99999" in direct.bad[0].problem
    assert audit_examples(examples, progress=False).bad == []


def test_duration_limit_is_the_processors(tiny, tmp_path):
    assert user_audio_limits("tiny") == (tiny.processor.sampling_rate, tiny.processor.max_audio_seconds) == (16_000, 30.0)
    tiny.processor.save_pretrained(tmp_path / "saved")
    assert user_audio_limits(str(tmp_path / "saved")) == (16_000, 30.0)
    manifest = corpus_manifest(tmp_path, long_user)
    result = audit_manifest(manifest, max_audio_seconds=30.0, progress=False)
    assert [b.id for b in result.bad] == [BAD_ID]
    assert "'user_audio'" in result.bad[0].problem and "audio is 31.0 s long, the model takes at most 30 s" in result.bad[0].problem
    assert audit_manifest(manifest, max_audio_seconds=None, progress=False).bad == []


def test_cache_decodes_each_file_once_and_again_when_it_changes(tmp_path, decodes):
    wavs = tmp_path / "wavs"
    shutil.copytree(CORPUS_DIR / "wavs", wavs)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text((CORPUS_DIR / "manifest_codes.jsonl").read_text().replace('"wavs/', f'"{wavs}/'))
    cache = tmp_path / "cache"
    first = audit_manifest(manifest, cache_dir=cache, progress=False)
    assert len(decodes) == CORPUS_FILES and first.decoded == CORPUS_FILES and len(first.good) == 40
    decodes.clear()
    again = audit_manifest(manifest, cache_dir=cache, progress=False)
    assert decodes == [] and again.decoded == 0 and len(again.good) == 40
    # A new mtime (same bytes), then new content: each decoded again, nothing else.
    st = (wavs / "q00.wav").stat()
    os.utime(wavs / "q00.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    audit_manifest(manifest, cache_dir=cache, progress=False)
    assert decodes == [str(wavs / "q00.wav")]
    decodes.clear()
    (wavs / "r00_sad.wav").write_bytes(b"garbage")
    result = audit_manifest(manifest, cache_dir=cache, progress=False)
    assert decodes == [str(wavs / "r00_sad.wav")] and [b.id for b in result.bad] == ["r00_sad"]
    decodes.clear()
    assert [b.id for b in audit_manifest(manifest, cache_dir=cache, progress=False).bad] == ["r00_sad"]
    assert decodes == []  # a bad result is cached too
    assert len(json.loads((cache / audit.CACHE_FILE).read_text())) == CORPUS_FILES  # stale versions dropped


def test_on_bad_item_is_validated():
    for schema, config in ((SFTConfig, "stage1_tiny"), (UAPOConfig, "stage3_tiny"), (Stage0Config, "stage0_tiny")):
        with pytest.raises(ConfigError, match=r"on_bad_item: 'drop' is not one of skip, error"):
            load_config(schema, config, ["on_bad_item=drop"])
        assert load_config(schema, config).on_bad_item == "skip"


def _three_examples(tmp_path):
    """Three corpus examples with user audio of their own (copies), audited good."""
    manifest = tmp_path / "m.jsonl"
    lines = []
    for k, line in enumerate((CORPUS_DIR / "manifest_codes.jsonl").read_text().splitlines()[:9:3]):
        obj = json.loads(line)
        shutil.copy(CORPUS_DIR / obj["user_audio"], tmp_path / f"u{k}.wav")
        obj["user_audio"], obj["reply_audio"] = f"u{k}.wav", str(CORPUS_DIR / obj["reply_audio"])
        lines.append(json.dumps(obj))
    manifest.write_text("\n".join(lines) + "\n")
    result = audit_manifest(manifest, max_audio_seconds=30.0, progress=False)
    assert len(result.good) == 3
    return manifest, result.good


def test_collator_drops_an_item_whose_audio_broke_after_the_audit(tiny, tmp_path, caplog):
    manifest, (a, b, c) = _three_examples(tmp_path)
    b.user_audio.write_bytes(b"corrupted after the audit")
    collate = TeacherForcingCollator.for_model(tiny.model, tiny.processor, tiny.speakers, drop_failures=True)
    with caplog.at_level(logging.WARNING, logger="sa_slm.data.collate"):
        batch = collate([a, b, c])
    reference = TeacherForcingCollator.for_model(tiny.model, tiny.processor, tiny.speakers)([a, c])
    assert batch.keys() == reference.keys() and batch["input_ids"].shape[0] == 2
    for key in reference:
        torch.testing.assert_close(batch[key], reference[key], rtol=0, atol=0)
    assert f"dropped item '{b.id}' from its batch: {manifest}:2: " in caplog.text and "cannot decode audio" in caplog.text
    # Every item failing: the previous batch again (the step still happens on every rank).
    again = collate([b])
    for key in reference:
        torch.testing.assert_close(again[key], reference[key], rtol=0, atol=0)
    # Without drop_failures (the probe, direct callers), the failure is raised as before.
    with pytest.raises(SASLMError, match=rf"{manifest}:2: .*cannot decode audio"):
        TeacherForcingCollator.for_model(tiny.model, tiny.processor, tiny.speakers)([a, b, c])
    # A first batch that fails entirely has nothing to fall back on: a clear error.
    with pytest.raises(SASLMError, match=rf"every item of the first batch failed \({manifest}:2: "):
        TeacherForcingCollator.for_model(tiny.model, tiny.processor, tiny.speakers, drop_failures=True)([b])


def test_prompt_collator_drops_a_prompt_whose_audio_broke(tiny, tmp_path):
    manifest, (a, b, c) = _three_examples(tmp_path)
    b.user_audio.unlink()
    collate = PromptCollator(tiny.processor, drop_failures=True)
    out = collate([a, b, c])
    assert [ex.id for ex in out["examples"]] == [a.id, c.id]
    expected = tiny.processor.load_audio(c.user_audio)
    np.testing.assert_array_equal(out["conversations"][1].turns[-1].audio, expected)
    assert [ex.id for ex in collate([b])["examples"]] == [a.id, c.id]


def test_stage1_with_on_bad_item_error_stops_before_the_model_loads(tmp_path, monkeypatch, capsys):
    from sa_slm.facade import SASLM
    from sa_slm.recipes import stage1

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the audit stopped the run")

    monkeypatch.setattr(SASLM, "from_pretrained", no_model)
    manifest = corpus_manifest(tmp_path, garbage_reply)
    code = stage1.main(["--config", "stage1_tiny", f"train_manifest={manifest}", f"output_dir={tmp_path / 'out'}",
                        "on_bad_item=error"])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{manifest}:13: 'reply_audio'" in errors[0]


@pytest.mark.slow
def test_stage1_trains_past_one_undecodable_clip(tmp_path, caplog):
    """The acceptance run: 40 items, one garbage wav → exit 0, 1 skipped, the 39 others trained on."""
    from sa_slm.recipes import stage1

    manifest = corpus_manifest(tmp_path, garbage_reply)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code = stage1.main(["--config", "stage1_tiny", f"train_manifest={manifest}", f"output_dir={out}",
                            "train.max_steps=4", "train.per_device_train_batch_size=8", "train.save_steps=100"])
    assert code == 0
    assert "audit: 1 of 40 items skipped" in caplog.text
    rows = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert rows[0]["skipped"] == 1 and [r["id"] for r in rows[1:]] == [BAD_ID]
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4


@pytest.mark.slow
def test_stage3_skips_a_prompt_with_undecodable_user_audio(tmp_path, caplog):
    from sa_slm.recipes import stage3

    def garbage_first_prompt(obj, folder):
        (folder / "bad_q.wav").write_bytes(b"not audio" * 50)
        obj["user_audio"] = str(folder / "bad_q.wav")

    manifest = corpus_manifest(tmp_path, garbage_first_prompt, source="manifest.jsonl")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code = stage3.main(["--config", "stage3_tiny", f"prompts_manifest={manifest}", f"output_dir={out}",
                            "train.max_steps=1", "num_samples=2", "sampling.max_new_codes=8", "audio_every=0"])
    assert code == 0
    assert "audit: 1 of 40 items skipped" in caplog.text
    rows = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows[1:]] == [BAD_ID] and "'user_audio'" in rows[1]["problem"]


def test_stage1_items_without_codes_are_bad_items(tmp_path):
    """A line `sa-slm tokenize` passed through without codes (no reply_audio) is skipped and listed under
    `require_codes`, like any other bad item; without `require_codes` (stage 3, evaluation) it is good."""

    def drop_codes(obj, folder):
        del obj["reply_codes"]

    manifest = corpus_manifest(tmp_path, drop_codes)
    result = audit_manifest(manifest, codebook_size=8448, progress=False, require_codes=True)
    assert [(b.where, b.id) for b in result.bad] == [(f"{manifest}:13", BAD_ID)]
    assert result.bad[0].problem == audit.MISSING_CODES and len(result.good) == 39
    assert audit_manifest(manifest, codebook_size=8448, progress=False).bad == []
