"""The paper-mini corpus: balanced styles, whole held-out sentences, timing that follows the presets'
rates, byte-for-byte reproducible builds, resumable, and readable by the manifest loader."""

import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sa_slm.config import ConfigError
from sa_slm.data import load_manifest
from sa_slm.errors import SASLMError
from sa_slm.paper_mini import corpus
from sa_slm.paper_mini.corpus import (ASSISTANT_VOICES, INSTRUCTIONS, QUESTIONS, REPLY_SENTENCES,
                                      STYLE_FOR_USER_EMOTION, STYLES, USER_VOICES, CorpusConfig, build_corpus,
                                      plan_corpus)

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
SMALL = CorpusConfig(sentences=12, heldout_sentences=3, seed=0, workers=2)
SLOW_TO_FAST = ("calm", "sad", "neutral", "happy", "angry")  # the presets' rates: -35 %, -20 %, 0, +15 %, +35 %


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Relative path -> content of the manifests and every WAV under `root`."""
    files = [root / "train.jsonl", root / "test.jsonl", *sorted(root.glob("wavs/*/*.wav"))]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The SMALL corpus, built once for the module: (info, rows of both splits)."""
    info = build_corpus(tmp_path_factory.mktemp("pm") / "corpus", SMALL, espeak=ESPEAK or "espeak-ng", progress=False)
    return info, {"train": read_rows(info.train), "test": read_rows(info.test)}


def test_texts_are_short_distinct_and_comma_free():
    assert len(REPLY_SENTENCES) >= 200 and len(set(REPLY_SENTENCES)) == len(REPLY_SENTENCES)
    assert all(4 <= len(s.split()) <= 7 for s in REPLY_SENTENCES), [s for s in REPLY_SENTENCES if not 4 <= len(s.split()) <= 7]
    assert len(set(QUESTIONS)) == len(QUESTIONS) >= 30
    # synthesis splits one espeak-ng call at its long pauses: a comma's pause must not be one of them
    assert not [t for t in REPLY_SENTENCES + QUESTIONS if "," in t]
    assert sorted(STYLE_FOR_USER_EMOTION) == sorted(STYLE_FOR_USER_EMOTION.values()) == sorted(STYLES)
    assert all(len(set(INSTRUCTIONS[s])) == 3 for s in STYLES)


def test_plan_holds_out_whole_sentences_and_puts_every_voice_in_both_splits():
    plans = plan_corpus(CorpusConfig())
    assert [p.sid for p in plans] == [f"s{i:03d}" for i in range(200)]
    assert [p.text for p in plans] == list(REPLY_SENTENCES[:200])
    by_split = {s: [p for p in plans if p.split == s] for s in ("train", "test")}
    assert (len(by_split["train"]), len(by_split["test"])) == (160, 40)
    for split, members in by_split.items():
        assert {p.voice for p in members} == set(ASSISTANT_VOICES), split
        assert {p.user_voice for p in members} == set(USER_VOICES), split
        # voices are dealt round robin within a split: counts differ by at most one
        assert max(Counter(p.voice for p in members).values()) - min(Counter(p.voice for p in members).values()) <= 1
    assert plan_corpus(CorpusConfig()) == plans  # the seed alone decides
    other = {p.sid for p in plan_corpus(CorpusConfig(seed=1)) if p.split == "test"}
    assert other != {p.sid for p in by_split["test"]} and len(other) == 40


@pytest.mark.parametrize("field, value", [("sentences", 9), ("sentences", len(REPLY_SENTENCES) + 1),
                                          ("heldout_sentences", 2), ("heldout_sentences", 198), ("workers", 0),
                                          ("seed", "0")])
def test_bad_config_is_a_config_error_naming_the_field(field, value):
    cfg = CorpusConfig(**{field: value})
    with pytest.raises(ConfigError, match=f"CorpusConfig.{field} = "):
        plan_corpus(cfg)


def test_missing_espeak_is_an_error_saying_how_to_install_it(tmp_path):
    with pytest.raises(SASLMError, match=r"/nonexistent/espeak-ng: espeak-ng not found.*apt-get install espeak-ng"):
        build_corpus(tmp_path / "c", SMALL, espeak="/nonexistent/espeak-ng", progress=False)
    assert not (tmp_path / "c").exists()


@needs_espeak
@pytest.mark.parametrize("voice, message", [("en-gb+m3", "no voice variant 'm3'"), ("xx-zz", "cannot load voice 'xx-zz'")])
def test_a_voice_espeak_cannot_give_is_an_error(monkeypatch, voice, message):
    """espeak-ng fails on an unknown language but silently drops a variant it cannot attach ("en-gb+m3"
    sounds exactly like "en-gb"): both are caught before any clip is made."""
    monkeypatch.setattr(corpus, "ASSISTANT_VOICES", ("en-us+f3", voice))
    with pytest.raises(corpus.EspeakError, match=message):
        corpus.check_voices(ESPEAK)


@needs_espeak
def test_splits_hold_out_whole_sentences(built):
    info, rows = built
    sids = {split: {r["sentence"] for r in rows[split]} for split in rows}
    assert not sids["train"] & sids["test"]
    assert sids["train"] | sids["test"] == {f"s{i:03d}" for i in range(SMALL.sentences)}
    assert len(sids["test"]) == SMALL.heldout_sentences
    assert {s: set(v) for s, v in info.sentences.items()} == sids
    assert info.rows == {s: len(r) for s, r in rows.items()} == {"train": 90, "test": 30}
    assert info.skipped == [] and not (info.root / "skipped.jsonl").exists()
    meta = json.loads((info.root / "corpus.json").read_text())
    assert meta["heldout"] == sorted(sids["test"]) and meta["espeak"].startswith("eSpeak NG")
    assert meta["clips"] == {"reply": 60, "user": 60}
    assert meta["config"] == {"sentences": 12, "heldout_sentences": 3, "seed": 0, "workers": 2}
    # hours: the split's reply and user clips, as long as the WAVs say
    for split in rows:
        seconds = sum(sf.info(str(info.root / f"wavs/{kind}/{sid}_{s}.wav")).duration
                      for sid in sids[split] for kind in ("reply", "user") for s in STYLES)
        assert meta["hours"][split] == pytest.approx(seconds / 3600, abs=1e-4)


@needs_espeak
def test_every_sentence_has_ten_rows_with_each_style_once_per_context(built):
    _, rows = built
    by_sentence = defaultdict(list)
    for r in rows["train"] + rows["test"]:
        by_sentence[r["sentence"]].append(r)
    assert len(by_sentence) == SMALL.sentences
    for sid, group in by_sentence.items():
        assert len(group) == 10, sid
        for context in ("spoken", "asked"):
            styles = [r["emotion"] for r in group if r["context"] == context]
            assert sorted(styles) == sorted(STYLES), (sid, context)
        assert {r["id"] for r in group} == {f"{c}/{sid}_{s}" for c in ("spoken", "asked") for s in STYLES}
        assert len({r["reply_text"] for r in group}) == 1, sid  # one text: delivery is the only difference
        assert len({r["voice"] for r in group}) == 1 and group[0]["voice"] in ASSISTANT_VOICES
        # each style's reply clip is the same file in both contexts
        for s in STYLES:
            assert len({r["reply_audio"] for r in group if r["emotion"] == s}) == 1
        assert len({r["reply_audio"] for r in group}) == 5


@needs_espeak
def test_spoken_rows_carry_only_audio_and_asked_rows_only_the_instruction(built):
    info, rows = built
    questions = {}
    for r in rows["train"] + rows["test"]:
        if r["context"] == "spoken":
            assert r["user_text"] is None
            assert r["emotion"] == STYLE_FOR_USER_EMOTION[r["user_emotion"]]
            assert r["user_audio"] == f"wavs/user/{r['sentence']}_{r['user_emotion']}.wav"
            assert (info.root / r["user_audio"]).is_file()
        else:
            assert r["context"] == "asked" and r["user_audio"] is None and "user_emotion" not in r
            instruction = next(i for i in INSTRUCTIONS[r["emotion"]] if r["user_text"].startswith(i + " "))
            question = r["user_text"][len(instruction) + 1:]
            assert question in QUESTIONS
            questions.setdefault(r["sentence"], set()).add(question)
    assert all(len(q) == 1 for q in questions.values())  # one question per sentence, in every style
    spoken = defaultdict(set)
    for r in rows["train"] + rows["test"]:
        if r["context"] == "spoken":
            spoken[r["sentence"]].add(r["user_audio"])
    assert all(len(v) == 5 for v in spoken.values())
    # the 5 user clips of a sentence differ in sound, not only in name
    for sid, paths in spoken.items():
        assert len({(info.root / p).read_bytes() for p in paths}) == 5, sid


@needs_espeak
def test_clip_durations_follow_the_presets_rates(built):
    """Per sentence, reply and question: calm > sad > neutral > happy > angry, as the rates order them.

    espeak-ng honours this for every sentence of the pool in both assistant voices (measured on all
    480 sentences x 2 voices), so it is asserted per sentence, not on average.
    """
    info, rows = built
    durations = defaultdict(dict)  # (sid, kind) -> style -> seconds
    for wav in sorted(info.root.glob("wavs/*/*.wav")):
        meta = sf.info(str(wav))
        assert (meta.samplerate, meta.channels, meta.subtype) == (16_000, 1, "PCM_16"), wav
        sid, style = wav.stem.split("_")
        durations[sid, wav.parent.name][style] = meta.duration
    assert len(durations) == 2 * SMALL.sentences
    for (sid, kind), d in durations.items():
        seconds = [d[s] for s in SLOW_TO_FAST]
        assert all(a > b for a, b in zip(seconds, seconds[1:])), (sid, kind, d)
        if kind == "reply":
            assert d["calm"] <= corpus.MAX_REPLY_S and 0.9 <= d["neutral"] <= 1.7, (sid, d)
    neutral = np.mean([d["neutral"] for (sid, kind), d in durations.items() if kind == "reply"])
    assert 1.1 <= neutral <= 1.6


@needs_espeak
def test_a_second_build_is_byte_identical(built, tmp_path):
    """Another folder, one worker instead of two (clips finish in another order): the same bytes."""
    info, _ = built
    one_worker = CorpusConfig(sentences=SMALL.sentences, heldout_sentences=SMALL.heldout_sentences, workers=1)
    again = build_corpus(tmp_path / "again", one_worker, espeak=ESPEAK, progress=False)
    first, second = tree_bytes(info.root), tree_bytes(again.root)
    assert sorted(first) == sorted(second) and len(first) == 2 + 10 * SMALL.sentences
    assert [k for k in first if first[k] != second[k]] == []


@needs_espeak
def test_a_finished_corpus_is_reused_and_a_missing_clip_rebuilt(built, tmp_path):
    info, _ = built
    root = tmp_path / "copy"
    shutil.copytree(info.root, root)
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    reused = build_corpus(root, CorpusConfig(sentences=12, heldout_sentences=3, workers=1), espeak=ESPEAK,
                          progress=False)  # workers only change speed, so the corpus still counts as built
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert (reused.sentences, reused.rows, reused.skipped) == (info.sentences, info.rows, info.skipped)
    assert reused.train == root / "train.jsonl"

    before = tree_bytes(root)
    (root / "wavs/user/s005_sad.wav").unlink()
    build_corpus(root, SMALL, espeak=ESPEAK, progress=False)
    assert tree_bytes(root) == before
    assert (root / "wavs/reply/s000_calm.wav").stat().st_mtime_ns != stamps[root / "wavs/reply/s000_calm.wav"]

    # a different config is a different corpus: rebuilt, not reused
    other = build_corpus(root, CorpusConfig(sentences=12, heldout_sentences=3, seed=5), espeak=ESPEAK, progress=False)
    assert other.sentences["test"] != info.sentences["test"]
    assert json.loads((root / "corpus.json").read_text())["config"]["seed"] == 5


@needs_espeak
def test_load_manifest_accepts_both_splits(built):
    info, rows = built
    for split, path in (("train", info.train), ("test", info.test)):
        examples = load_manifest(path)
        assert len(examples) == info.rows[split] == len(rows[split])
        for ex in examples:
            assert {"emotion", "context", "sentence", "voice"} <= set(ex.labels)
            assert ex.reply_audio is not None and ex.reply_audio.is_file()
            assert (ex.user_audio is None) == (ex.labels["context"] == "asked")
            assert (ex.user_text is None) == (ex.labels["context"] == "spoken")


@needs_espeak
def test_a_sentence_whose_clip_fails_is_left_out_whole(tmp_path):
    """espeak-ng failing on one sentence's text: that sentence is skipped with the reason, the rest built."""
    cfg = CorpusConfig(sentences=10, heldout_sentences=3)
    victim = REPLY_SENTENCES[4]
    wrapper = tmp_path / "espeak-ng"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *"{victim}"*) echo "no voice today" >&2; exit 3;; esac\n'
                       f'exec {ESPEAK} "$@"\n')
    wrapper.chmod(0o755)
    info = build_corpus(tmp_path / "c", cfg, espeak=str(wrapper), progress=False)
    assert [s["sentence"] for s in info.skipped] == ["s004"]
    assert "exited with 3" in info.skipped[0]["reason"] and "no voice today" in info.skipped[0]["reason"]
    assert read_rows(tmp_path / "c" / "skipped.jsonl") == info.skipped
    rows = read_rows(info.train) + read_rows(info.test)
    assert "s004" not in {r["sentence"] for r in rows} and len(rows) == 90
    assert not list((tmp_path / "c").glob("wavs/*/s004_*.wav"))  # its user clips (which worked) are gone too
    assert "s004" not in info.sentences["train"] + info.sentences["test"]
