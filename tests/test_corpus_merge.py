"""`sa_slm.corpora.merge`: prepared manifests of several corpora → one manifest over the same audio."""

import json
import shutil

import pytest

from sa_slm.corpora.merge import merge_manifests
from sa_slm.data import load_manifest
from sa_slm.errors import ManifestError
from sa_slm.paths import CORPUS_DIR

WAVS = sorted((CORPUS_DIR / "wavs").glob("r0*.wav"))


def _corpus(folder, rows, wavs):
    (folder / "wavs").mkdir(parents=True)
    for wav in wavs:
        shutil.copy(wav, folder / "wavs" / wav.name)
    path = folder / "train.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_merge_keeps_audio_labels_and_separates_ids(tmp_path):
    a = _corpus(tmp_path / "genshin", [
        {"id": "x", "user_text": "Say it.", "reply_text": "One.", "reply_audio": f"wavs/{WAVS[0].name}", "speaker_id": "Paimon"},
        {"id": "y", "user_text": "Say it.", "reply_text": "Two.", "reply_audio": f"wavs/{WAVS[1].name}"},
    ], WAVS[:2])
    b = _corpus(tmp_path / "emovoice", [
        {"id": "x", "user_text": "Happily.", "reply_text": "Three.", "reply_audio": f"wavs/{WAVS[2].name}", "emotion": "happy"},
        '{"id": "broken", "reply_text": ',
    ], WAVS[2:3])
    out = tmp_path / "expressive" / "train.jsonl"
    result = merge_manifests([a, f"emo={b}"], out)

    assert result.counts == {"genshin": 2, "emo": 1}
    assert [bad.where for bad in result.bad] == [f"{b}:2"]
    examples = load_manifest(out)
    assert [ex.id for ex in examples] == ["genshin/x", "genshin/y", "emo/x"]
    assert [ex.reply_audio.resolve() for ex in examples] == [
        (tmp_path / "genshin" / "wavs" / WAVS[0].name).resolve(),
        (tmp_path / "genshin" / "wavs" / WAVS[1].name).resolve(),
        (tmp_path / "emovoice" / "wavs" / WAVS[2].name).resolve(),
    ]
    raw = [json.loads(line) for line in out.read_text().splitlines()]
    assert raw[0]["reply_audio"] == f"../genshin/wavs/{WAVS[0].name}"  # relative: the tree can move
    assert examples[0].labels == {"speaker_id": "Paimon", "corpus": "genshin"}
    assert examples[2].labels == {"emotion": "happy", "corpus": "emo"}


def test_merge_refuses_two_corpora_of_one_name(tmp_path):
    a = _corpus(tmp_path / "one" / "data", [{"user_text": "q", "reply_text": "a"}], [])
    b = _corpus(tmp_path / "two" / "data", [{"user_text": "q", "reply_text": "b"}], [])
    with pytest.raises(ManifestError, match="corpus name 'data' is used by"):
        merge_manifests([a, b], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_data_merge_command(tmp_path, capsys):
    from sa_slm.cli import main

    a = _corpus(tmp_path / "a", [{"id": "x", "user_text": "q", "reply_text": "One."}], [])
    b = _corpus(tmp_path / "b", [{"id": "x", "user_text": "q", "reply_text": "Two."}, "not json"], [])
    out = tmp_path / "ab" / "train.jsonl"
    assert main(["data", "merge", str(a), str(b), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"wrote {out}: 2 items (a 1, b 1)" in captured.out
    assert captured.err.strip().startswith(f"skipped {b}:2: not valid JSON")
    assert [ex.reply_text for ex in load_manifest(out)] == ["One.", "Two."]
    assert main(["data", "merge", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.jsonl'}: manifest not found"
