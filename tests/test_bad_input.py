"""Bad input gets a clear error naming the file, line or value, and nothing else is lost."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from sa_slm.audio import load_audio
from sa_slm.data.collate import TeacherForcingCollator
from sa_slm.data.manifest import load_manifest
from sa_slm.errors import AudioError, EmptyReplyError, InputTooLongError, ManifestError, SpeakerError


def test_missing_audio_file(tiny, tmp_path):
    missing = tmp_path / "nowhere" / "question.wav"
    with pytest.raises(AudioError, match=r"nowhere/question\.wav: audio file not found"):
        tiny.generate(audio=missing)


def test_corrupt_audio_file(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(AudioError, match=r"corrupt\.wav: cannot decode audio"):
        load_audio(bad, 16_000)


def test_empty_audio_file(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(AudioError, match=r"empty\.wav: audio is empty"):
        load_audio(empty, 16_000)


def test_over_long_audio(tiny, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16_000 * 31, dtype=np.float32), 16_000)
    with pytest.raises(InputTooLongError, match=r"long\.wav: audio is 31\.0 s long, the model takes at most 30 s"):
        tiny.generate(audio=long)


def test_over_long_codes(tiny):
    limit = tiny.model.config.token2wav_config.dit_config.max_position_embeddings // 2
    with pytest.raises(InputTooLongError, match=f"{limit + 1} codes exceed"):
        tiny.decode(torch.zeros(limit + 1, dtype=torch.long))


def test_unknown_speaker(tiny):
    with pytest.raises(SpeakerError, match=r"unknown speaker 'Nobody'; available speakers: Chelsie, Ethan"):
        tiny.generate(text="hello", speaker="Nobody")


def test_empty_reply_text(tiny):
    with pytest.raises(EmptyReplyError, match="reply_text is empty"):
        tiny.generate(text="hello", reply_text="")


def test_malformed_manifest_lines_are_all_reported(tmp_path):
    (tmp_path / "q.wav").write_bytes(b"")  # exists; content is checked only when loaded
    lines = [
        json.dumps({"user_audio": "q.wav", "reply_text": "fine"}),
        '{"user_text": "hi", "reply_text": ',  # broken JSON
        json.dumps({"user_text": "hi"}),  # no reply
        json.dumps({"user_audio": "missing.wav", "reply_text": "ok"}),
        json.dumps({"user_text": "hi", "reply_text": "ok", "reply_codes": [1, "x"]}),
        json.dumps({"user_text": "hi", "reply_text": "ok", "reply_codes": [9000]}),
    ]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(manifest, codebook_size=8448)
    msg = str(err.value)
    assert msg.startswith(f"5 problem(s) in {manifest}")
    assert f"{manifest}:2: not valid JSON" in msg
    assert f"{manifest}:3: 'reply_text' is missing or empty" in msg
    assert f"{manifest}:4: 'user_audio' file not found" in msg and "missing.wav" in msg
    assert f"{manifest}:5: 'reply_codes' must be a non-empty list of integers" in msg
    assert f"{manifest}:6: 'reply_codes' holds 9000, outside the codec vocabulary 0..8447" in msg
    assert f"{manifest}:1:" not in msg


def test_unknown_speaker_in_manifest_names_the_line(tiny, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"user_text": "hi", "reply_text": "ok", "reply_codes": [1, 2], "speaker": "Zed"}) + "\n")
    examples = load_manifest(manifest)
    with pytest.raises(SpeakerError, match=rf"{manifest}:1: unknown speaker 'Zed'"):
        TeacherForcingCollator.for_model(tiny.model, tiny.processor, tiny.speakers)(examples)


def test_corrupt_user_audio_in_manifest_names_the_line(tiny, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"garbage")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"user_audio": "bad.wav", "reply_text": "ok", "reply_codes": [1]}) + "\n")
    with pytest.raises(AudioError, match=rf"{manifest}:1: .*bad\.wav: cannot decode audio"):
        TeacherForcingCollator.for_model(tiny.model, tiny.processor, tiny.speakers)(load_manifest(manifest))
