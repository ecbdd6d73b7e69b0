"""Dataset recipes (generic: hf, folder, table) and the shared writer: fixtures that mirror each layout field
for field, built from the shipped tiny-corpus WAVs; the prepared split is read back and checked by value."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sa_slm.cli import main as cli_main
from sa_slm.corpora import CorpusError, prepare
from sa_slm.corpora.writer import DEFAULT_USER_TEXT, manifest_labels
from sa_slm.data.manifest import load_manifest
from sa_slm.paths import CORPUS_DIR

WAVS = CORPUS_DIR / "wavs"
GARBAGE = b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 4


def pcm(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit file's samples as int16 (exact) and its rate."""
    wav, sr = sf.read(str(path), dtype="int16")
    return wav, sr


def seconds(name: str) -> float:
    info = sf.info(str(WAVS / f"{name}.wav"))
    return info.frames / info.samplerate


def manifest_by_id(path: Path) -> dict[str, dict]:
    return {obj["id"]: obj for obj in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def skipped_lines(result) -> list[dict]:
    return [json.loads(line) for line in result.skipped_file.read_text(encoding="utf-8").splitlines()]


def assert_same_audio(written: Path, source: Path) -> None:
    got, got_sr = pcm(written)
    want, want_sr = pcm(source)
    assert got_sr == want_sr and sf.info(str(written)).subtype == sf.info(str(source)).subtype == "PCM_16"
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- hf: save_to_disk folder

HF_ROWS = [  # (id, sentence, clip or bytes, client_id, emotion, speaker (a source column named like a manifest key), age)
    ("u1", "It was quiet, I stayed at home.", "r00_happy", "spk_a", "happy", "Ann", 31),
    ("u2", "We finally won the match!", "r01_angry", "spk_b", "angry", "Bob", 45),
    ("u3", "Nobody called me back.", "r02_sad", "spk_a", "sad", "Ann", 31),
    ("u1", "A second row with the first id.", "r03_calm", "spk_c", "calm", "Cy", 22),  # duplicate id
    ("u5", "These bytes are not audio.", GARBAGE, "spk_c", "calm", "Cy", 22),  # undecodable
    ("u6", "   ", "r04_happy", "spk_c", "happy", "Cy", 22),  # empty text
    ("u7", "Another happy one.", "r05_happy", "spk_b", "happy", "Bob", 45),
]
HF_GOOD = ["u1", "u2", "u3", "u7"]


def _hf_dataset(rows):
    """A `datasets.Dataset` whose `audio` column is an `Audio` feature holding WAV bytes (as the hub stores
    them: {"bytes", "path"} cells). Cast from a plain struct, so building it needs no torchcodec."""
    import datasets

    def cell(ref):
        return {"bytes": ref, "path": None} if isinstance(ref, bytes) else \
            {"bytes": (WAVS / f"{ref}.wav").read_bytes(), "path": f"{ref}.wav"}

    ds = datasets.Dataset.from_dict({
        "id": [r[0] for r in rows], "sentence": [r[1] for r in rows], "audio": [cell(r[2]) for r in rows],
        "client_id": [r[3] for r in rows], "emotion": [r[4] for r in rows], "speaker": [r[5] for r in rows],
        "age": [r[6] for r in rows],
    })
    return ds.cast_column("audio", datasets.Audio())


@pytest.fixture(scope="module")
def hf_disk(tmp_path_factory) -> Path:
    import datasets

    src = tmp_path_factory.mktemp("hf_disk") / "dataset"
    datasets.DatasetDict({"train": _hf_dataset(HF_ROWS), "test": _hf_dataset(HF_ROWS[:2])}).save_to_disk(str(src))
    return src


@pytest.fixture(scope="module")
def hf_prepared(hf_disk, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf_out")
    return prepare("hf", hf_disk, out, "train", progress=False,
                   columns={"text": "sentence", "speaker_id": "client_id"})


def test_hf_save_to_disk_manifest_labels_and_audio(hf_prepared, hf_disk):
    result = hf_prepared
    examples = load_manifest(result.manifest)
    assert [ex.id for ex in examples] == HF_GOOD
    lines = manifest_by_id(result.manifest)
    for row in HF_ROWS:
        if row[0] not in HF_GOOD or lines[row[0]]["reply_text"] != row[1]:
            continue
        line = lines[row[0]]
        # labels carried over by value; the source's `speaker` may not become the model's speaker
        assert (line["speaker_id"], line["emotion"], line["source_speaker"], line["age"]) == row[3:7]
        assert "speaker" not in line and "client_id" not in line and "sentence" not in line
        assert line["user_text"] == DEFAULT_USER_TEXT  # a TTS corpus: the writer supplies the user turn
        assert_same_audio(result.out / line["reply_audio"], WAVS / f"{row[2]}.wav")
    assert result.texts.read_text(encoding="utf-8").splitlines() == [r[1] for r in HF_ROWS if r[0] in HF_GOOD
                                                                    and r[1] != "A second row with the first id."]


def test_hf_bad_rows_are_skipped_and_reported(hf_prepared):
    result = hf_prepared
    reported = {(s["id"], s["reason"].split(":")[0]) for s in skipped_lines(result)}
    assert reported == {("u1", "duplicate id"), ("u5", "bad reply audio"), ("u6", "empty text")}
    assert [s["where"] for s in skipped_lines(result)] == ["train#3", "train#4", "train#5"]
    card = json.loads(result.card_json.read_text())
    assert card["skipped"]["total"] == 3
    assert card["skipped"]["by_reason"] == {"duplicate id": 1, "bad reply audio": 1, "empty text": 1}
    assert card["skipped"]["examples"]["bad reply audio"][0]["id"] == "u5"
    md = result.card_md.read_text()
    assert "duplicate id: 1" in md and "empty text: 1" in md


def test_hf_card_numbers_by_hand(hf_prepared):
    card = json.loads(hf_prepared.card_json.read_text())
    clips = ["r00_happy", "r01_angry", "r02_sad", "r05_happy"]
    durations = [seconds(c) for c in clips]
    assert card["items"] == 4 and card["reply_clips"] == 4
    assert card["hours"] == pytest.approx(sum(durations) / 3600, rel=1e-12)
    assert card["speakers"] == 2  # spk_a, spk_b among the items kept
    assert card["labels"]["emotion"]["counts"] == {"happy": 2, "angry": 1, "sad": 1}
    assert card["labels"]["age"]["counts"] == {"31": 2, "45": 2}
    assert card["labels"]["speaker_id"]["counts"] == {"spk_a": 2, "spk_b": 2}
    assert card["default_user_text_items"] == 4
    # 1-second bins from 0 to the longest clip, rounded up
    bins = math.ceil(max(durations))
    want = [sum(1 for d in durations if min(int(d), bins - 1) == k) for k in range(bins)]
    assert card["durations"]["bin_seconds"] == 1 and card["durations"]["counts"] == want
    assert hf_prepared.durations_png.is_file() and hf_prepared.durations_png.read_bytes()[:4] == b"\x89PNG"


def test_hf_splits_come_from_the_dataset_dict(hf_disk, tmp_path):
    result = prepare("hf", hf_disk, tmp_path, "test", progress=False, columns={"text": "sentence"})
    assert [ex.id for ex in load_manifest(result.manifest)] == ["u1", "u2"]
    assert result.manifest == tmp_path / "test.jsonl"
    assert load_manifest(result.manifest)[0].labels["client_id"] == "spk_a"  # unmapped columns stay labels
    with pytest.raises(CorpusError, match=r"no split 'dev'; splits: train, test"):
        prepare("hf", hf_disk, tmp_path / "o", "dev", progress=False)
    with pytest.raises(CorpusError, match=r"no column 'sentense'.*did you mean 'sentence'"):
        prepare("hf", hf_disk, tmp_path / "o", "test", progress=False, columns={"text": "sentense"})
    assert not (tmp_path / "o").exists()  # nothing written for a source the recipe cannot read
    _hf_dataset(HF_ROWS[:1]).save_to_disk(str(tmp_path / "single"))  # a Dataset, not a DatasetDict: `train`
    single = prepare("hf", tmp_path / "single", tmp_path / "o5", progress=False)
    assert single.split == "train" and [ex.reply_text for ex in load_manifest(single.manifest)] == [HF_ROWS[0][1]]


def test_hf_parquet_files(tmp_path):
    import datasets

    src = tmp_path / "snapshot"
    rows = [("p1", "First parquet line.", "r06_happy", "spk_x", "happy", "X", 1),
            ("p2", "Second parquet line.", "r06_sad", "spk_y", "sad", "Y", 2)]
    ds = _hf_dataset(rows).rename_column("sentence", "text").remove_columns(["id"])
    (src / "data").mkdir(parents=True)
    ds.to_parquet(str(src / "data" / "train-00000-of-00001.parquet"))
    result = prepare("hf", src, tmp_path / "out", progress=False, exclude="age")
    lines = list(manifest_by_id(result.manifest).values())
    assert [(line["id"], line["reply_text"], line["emotion"], line["client_id"]) for line in lines] == [
        ("train-0", "First parquet line.", "happy", "spk_x"), ("train-1", "Second parquet line.", "sad", "spk_y")]
    assert all("age" not in line for line in lines)  # excluded
    for line, row in zip(lines, rows):
        assert_same_audio(result.out / line["reply_audio"], WAVS / f"{row[2]}.wav")


# ---------------------------------------------------------------- table: LJSpeech, LibriTTS, headed tables

def _ljspeech(root: Path, bad_row: bool = True) -> Path:
    """LJSpeech-1.1 as downloaded: metadata.csv (id|transcription|normalized, quotes inside, no header),
    wavs/<id>.wav."""
    (root / "wavs").mkdir(parents=True)
    clips = {"LJ001-0001": "r00_neutral", "LJ001-0002": "r01_neutral", "LJ001-0003": "r02_neutral"}
    for item_id, clip in clips.items():
        (root / "wavs" / f"{item_id}.wav").write_bytes((WAVS / f"{clip}.wav").read_bytes())
    lines = ['LJ001-0001|He said "it is 1 p.m." twice|He said "it is one p.m." twice',
             'LJ001-0002|Printing, in the only sense|Printing, in the only sense',
             'LJ001-0003|"Quoted" start, 3 items|"Quoted" start, three items']
    if bad_row:
        (root / "wavs" / "LJ001-0004.wav").write_bytes(GARBAGE)
        lines += ["LJ001-0004|Garbage audio here|Garbage audio here", "LJ001-0005 only an id, no text"]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_ljspeech_table(tmp_path):
    src = _ljspeech(tmp_path / "LJSpeech-1.1")
    result = prepare("table", src, tmp_path / "out", progress=False)
    lines = manifest_by_id(result.manifest)
    assert list(lines) == ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    assert lines["LJ001-0001"]["reply_text"] == 'He said "it is one p.m." twice'  # QUOTE_NONE keeps the quotes
    assert lines["LJ001-0001"]["original_text"] == 'He said "it is 1 p.m." twice'
    assert lines["LJ001-0003"]["reply_text"] == '"Quoted" start, three items'
    assert "original_text" not in lines["LJ001-0002"]  # same text twice: no label
    for item_id, clip in {"LJ001-0001": "r00_neutral", "LJ001-0003": "r02_neutral"}.items():
        assert_same_audio(result.out / lines[item_id]["reply_audio"], WAVS / f"{clip}.wav")
    reasons = {s["id"]: s["reason"] for s in skipped_lines(result)}
    assert set(reasons) == {"LJ001-0004", "LJ001-0005 only an id, no text"}
    assert reasons["LJ001-0004"].startswith(f"bad reply audio: {src / 'wavs' / 'LJ001-0004.wav'}: cannot decode audio (")
    assert reasons["LJ001-0005 only an id, no text"].startswith("malformed row: 1 '|'-separated fields")
    assert [s["where"] for s in skipped_lines(result)] == [f"{src / 'metadata.csv'}:4", f"{src / 'metadata.csv'}:5"]


def test_libritts_trans_tsv(tmp_path):
    """LibriTTS: <subset>/<speaker>/<chapter>/<speaker>_<chapter>.trans.tsv (utt_id, original, normalized),
    audio <utt_id>.wav beside it."""
    src = tmp_path / "LibriTTS"
    rows = {"103/1241": [("103_1241_000000_000001", "Chapter 1.", "Chapter one.", "r00_calm"),
                         ("103_1241_000001_000000", "It was Mr. Smith.", "It was Mister Smith.", "r01_calm")],
            "1034/121119": [("1034_121119_000002_000000", "Plain words.", "Plain words.", "r02_calm")]}
    for folder, utts in rows.items():
        chapter = src / "train-clean-100" / folder
        chapter.mkdir(parents=True)
        for utt, _, _, clip in utts:
            (chapter / f"{utt}.wav").write_bytes((WAVS / f"{clip}.wav").read_bytes())
        (chapter / f"{folder.replace('/', '_')}.trans.tsv").write_text(
            "".join(f"{u}\t{o}\t{n}\n" for u, o, n, _ in utts), encoding="utf-8")
    result = prepare("table", src, tmp_path / "out", progress=False)
    lines = manifest_by_id(result.manifest)
    assert {k: (v["reply_text"], v["speaker_id"], v["chapter_id"], v.get("original_text")) for k, v in lines.items()} == {
        "103_1241_000000_000001": ("Chapter one.", "103", "1241", "Chapter 1."),
        "103_1241_000001_000000": ("It was Mister Smith.", "103", "1241", "It was Mr. Smith."),
        "1034_121119_000002_000000": ("Plain words.", "1034", "121119", None)}
    assert_same_audio(result.out / lines["103_1241_000001_000000"]["reply_audio"], WAVS / "r01_calm.wav")
    assert json.loads(result.card_json.read_text())["speakers"] == 2
    assert result.skipped == []


def test_headed_table_with_column_mapping(tmp_path):
    """A Common Voice style TSV: header row, `path` relative to clips/, `sentence`, `client_id`; plus a row
    whose audio path leaves the source folder."""
    src = tmp_path / "cv" / "en"
    (src / "clips").mkdir(parents=True)
    for clip in ("q00", "q01"):
        (src / "clips" / f"{clip}.wav").write_bytes((WAVS / f"{clip}.wav").read_bytes())
    (tmp_path / "outside.wav").write_bytes((WAVS / "q02.wav").read_bytes())
    (src / "validated.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\tgender\n"
        "c1\tq00.wav\tHow was your weekend?\t2\tfemale\n"
        "c2\tq01.wav\tShe said \"fine\".\t3\tmale\n"
        "c3\t../../outside.wav\tSneaky path.\t1\tmale\n", encoding="utf-8")
    result = prepare("table", src, tmp_path / "out", progress=False, metadata="validated.tsv", audio_dir="clips",
                     columns={"speaker_id": "client_id"})
    lines = manifest_by_id(result.manifest)
    assert {k: (v["reply_text"], v["speaker_id"], v["up_votes"], v["gender"]) for k, v in lines.items()} == {
        "q00": ("How was your weekend?", "c1", "2", "female"), "q01": ('She said "fine".', "c2", "3", "male")}
    assert_same_audio(result.out / lines["q01"]["reply_audio"], WAVS / "q01.wav")
    (skip,) = skipped_lines(result)
    assert "leaves the source folder" in skip["reason"] and skip["where"].endswith("validated.tsv:4")


# ---------------------------------------------------------------- folder: audio + transcripts

def test_folder_of_audio_and_transcripts(tmp_path):
    """MFA style (<stem>.txt / .lab beside the audio, speaker = folder), LibriSpeech (*.trans.txt, FLAC) and
    LibriTTS (<stem>.normalized.txt + .original.txt); an audio file with no transcript is skipped."""
    src = tmp_path / "corpus"
    for folder in ("alice", "bob", "carol"):
        (src / folder).mkdir(parents=True)
    (src / "alice" / "a1.wav").write_bytes((WAVS / "r03_happy.wav").read_bytes())
    (src / "alice" / "a1.txt").write_text("Hello there,\nfriend.\n", encoding="utf-8")
    (src / "alice" / "a2.wav").write_bytes((WAVS / "r03_sad.wav").read_bytes())
    (src / "alice" / "a2.lab").write_text("a lab transcript", encoding="utf-8")
    wav, sr = pcm(WAVS / "r04_angry.wav")
    sf.write(str(src / "bob" / "19-198-0001.flac"), wav, sr, subtype="PCM_16")
    (src / "bob" / "19-198.trans.txt").write_text("19-198-0001 NORTHANGER ABBEY\n", encoding="utf-8")
    (src / "carol" / "c1.wav").write_bytes((WAVS / "r05_calm.wav").read_bytes())
    (src / "carol" / "c1.normalized.txt").write_text("Mister Brown.", encoding="utf-8")
    (src / "carol" / "c1.original.txt").write_text("Mr. Brown.", encoding="utf-8")
    (src / "carol" / "no_text.wav").write_bytes((WAVS / "r05_sad.wav").read_bytes())
    result = prepare("folder", src, tmp_path / "out", progress=False, speaker_folder="1")
    lines = manifest_by_id(result.manifest)
    assert {k: (v["reply_text"], v["speaker_id"], v.get("original_text")) for k, v in lines.items()} == {
        "alice/a1": ("Hello there, friend.", "alice", None), "alice/a2": ("a lab transcript", "alice", None),
        "bob/19-198-0001": ("NORTHANGER ABBEY", "bob", None), "carol/c1": ("Mister Brown.", "carol", "Mr. Brown.")}
    got, got_sr = pcm(result.out / lines["bob/19-198-0001"]["reply_audio"])  # FLAC in, WAV out, same samples
    np.testing.assert_array_equal(got, wav)
    (skip,) = skipped_lines(result)
    assert skip["id"] == "carol/no_text" and skip["reason"].startswith("no transcript")


# ---------------------------------------------------------------- writer: names, labels, reruns

def test_ids_that_look_like_paths_stay_inside_out(tmp_path):
    import datasets

    rows = [("../../x", "Escape attempt.", "r06_calm", "s", "calm", "S", 1),
            ("a/b", "Slash in the id.", "r07_calm", "s", "calm", "S", 1),
            ("A/B", "Same name up to case.", "r07_happy", "s", "happy", "S", 1)]
    src = tmp_path / "src"
    datasets.DatasetDict({".hidden split": _hf_dataset(rows)}).save_to_disk(str(src))
    out = tmp_path / "deep" / "out"
    result = prepare("hf", src, out, ".hidden split", progress=False, columns={"text": "sentence"})
    written = [p for p in tmp_path.rglob("*") if p.is_file() and src not in p.parents]
    assert written and all(out.resolve() in p.resolve().parents for p in written)
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "deep" / "x.wav").exists()
    audio = [line["reply_audio"] for line in manifest_by_id(result.manifest).values()]
    assert len(set(a.lower() for a in audio)) == 3 and not any(".." in a.split("/") for a in audio)
    assert [ex.id for ex in load_manifest(result.manifest)] == ["../../x", "a/b", "A/B"]
    assert not any(p.name.startswith(".") for p in out.iterdir())  # the split name is sanitised too
    # a dataset_dict.json whose split would be read from outside the source folder
    (src / "dataset_dict.json").write_text(json.dumps({"splits": ["../elsewhere"]}))
    with pytest.raises(CorpusError, match=r"split '../elsewhere' is not a folder in"):
        prepare("hf", src, tmp_path / "o2", progress=False)


def test_dialogue_rows_with_user_audio_in_every_form(tmp_path, monkeypatch):
    """The writer's side of a dialogue recipe: user audio as an Audio cell with only a path, reply audio as a
    channel-first float array, history and system prompt kept; a row with undecodable user audio skipped."""
    from sa_slm.corpora import RECIPES, SourceItem
    from sa_slm.corpora.base import Recipe

    src = tmp_path / "dl"
    src.mkdir()
    (src / "q00.wav").write_bytes((WAVS / "q00.wav").read_bytes())
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((2, 8000))).astype(np.float32)  # (C, T)

    def read(src: Path, split: str):
        yield SourceItem(id="d1", reply_text="Fine, thanks.", where="d.json#0", user_text="How are you?",
                         user_audio={"bytes": None, "path": "q00.wav"}, reply_audio=(stereo, 24_000),
                         history=[{"role": "user", "text": "Hi"}, {"role": "assistant", "text": "Hello"}],
                         system_prompt="Be kind.", labels={"topic": "greeting"})
        yield SourceItem(id="d2", reply_text="Never mind.", where="d.json#1", user_audio=b"junk" * 50)

    monkeypatch.setitem(RECIPES, "dialogue_test", Recipe("dialogue_test", read, ("train",), "test", "stage 1"))
    result = prepare("dialogue_test", src, tmp_path / "out", progress=False)
    (ex,) = load_manifest(result.manifest)
    assert (ex.user_text, ex.history, ex.system_prompt, ex.labels) == (
        "How are you?", [("user", "Hi"), ("assistant", "Hello")], "Be kind.", {"topic": "greeting"})
    assert ex.user_audio == result.out / "wavs" / "train" / "user" / "d1.wav"
    assert_same_audio(ex.user_audio, WAVS / "q00.wav")
    reply, sr = sf.read(str(ex.reply_audio), dtype="float32")
    assert sr == 24_000 and reply.shape == (8000, 2)
    np.testing.assert_array_equal(reply, stereo.T)  # float WAV: the samples as given
    (skip,) = skipped_lines(result)
    assert skip["id"] == "d2" and skip["reason"].startswith("bad user audio: cannot decode audio")
    card = json.loads(result.card_json.read_text())
    assert card["user_clips"] == 1 and card["user_seconds"] == pytest.approx(seconds("q00"))
    assert card["reply_seconds"] == pytest.approx(8000 / 24_000) and card["default_user_text_items"] == 0


def test_label_renames():
    assert manifest_labels({"speaker": "Ann", "id": "7", "emotion": np.str_("sad"), "n": np.int64(3),
                            "raw": b"\x00", "none": None, "reply_text": "t", "source_reply_text": "u"}) == {
        "speaker_id": "Ann", "source_id": "7", "emotion": "sad", "n": 3, "source_reply_text_2": "t",
        "source_reply_text": "u"}
    # a source with both `speaker` and `speaker_id`: neither overwrites the other
    assert manifest_labels({"speaker": "Ann", "speaker_id": "a1"}) == {"source_speaker": "Ann", "speaker_id": "a1"}


def test_rerun_replaces_the_split(tmp_path):
    src = _ljspeech(tmp_path / "lj", bad_row=False)
    out = tmp_path / "out"
    first = prepare("table", src, out, progress=False)
    assert first.items == 3
    meta = src / "metadata.csv"
    meta.write_text("\n".join(meta.read_text().splitlines()[1:]) + "\n", encoding="utf-8")  # drop LJ001-0001
    second = prepare("table", src, out, progress=False)
    assert [ex.id for ex in load_manifest(second.manifest)] == ["LJ001-0002", "LJ001-0003"]
    assert sorted(p.name for p in (out / "wavs" / "train" / "reply").iterdir()) == ["LJ001-0002.wav", "LJ001-0003.wav"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial folders left
    assert json.loads(second.card_json.read_text())["items"] == 2


def test_bad_arguments_before_reading(tmp_path):
    src = _ljspeech(tmp_path / "lj", bad_row=False)
    with pytest.raises(CorpusError, match=r"unknown recipe 'tabel'.*did you mean 'table'"):
        prepare("tabel", src, tmp_path / "out")
    with pytest.raises(CorpusError, match=r"--src .*nope: not found"):
        prepare("table", tmp_path / "nope", tmp_path / "out")
    with pytest.raises(CorpusError, match=r"has no option 'delimeter'.*did you mean 'delimiter'"):
        prepare("table", src, tmp_path / "out", delimeter="|")
    with pytest.raises(CorpusError, match=r"overlap"):
        prepare("table", src, src / "prepared")
    assert not (tmp_path / "out").exists() and not (src / "prepared").exists()


# ---------------------------------------------------------------- command line

def test_cli_exit_codes(tmp_path, capsys):
    clean = _ljspeech(tmp_path / "clean", bad_row=False)
    assert cli_main(["data", "prepare", "table", "--src", str(clean), "--out", str(tmp_path / "o1")]) == 0
    assert "prepared 3 items" in capsys.readouterr().out
    dirty = _ljspeech(tmp_path / "dirty")
    assert cli_main(["data", "prepare", "table", "--src", str(dirty), "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert f"prepared 3 items (0.00 h); skipped 2 (see {tmp_path / 'o2' / 'train.skipped.jsonl'})" in err
    assert cli_main(["data", "prepare", "table", "--src", str(clean), "--out", str(tmp_path / "o3"),
                     "--split", "dev"]) == 2
    assert capsys.readouterr().err.strip() == f"error: recipe 'table': {clean} has no split 'dev'; splits: train"
    assert cli_main(["data", "prepare", "folder", "--src", str(clean), "--out", str(tmp_path / "o4"),
                     "--column", "text=x"]) == 2
    assert "takes no column mapping" in capsys.readouterr().err
    assert cli_main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("hf ", "folder ", "table "))
    assert os.listdir(tmp_path / "o1") and not (tmp_path / "o3").exists()
