"""Manifest loading, audio I/O and the teacher-forcing collator on the shipped corpus."""

import numpy as np
import pytest
import soundfile as sf
import torch

from sa_slm.audio import load_audio
from sa_slm.data.collate import TeacherForcingCollator
from sa_slm.data.manifest import example_to_json, load_manifest
from sa_slm.paths import CORPUS_DIR
from sa_slm.talker.sampling import SamplingConfig

MANIFEST = CORPUS_DIR / "manifest.jsonl"


def test_shipped_corpus_loads():
    examples = load_manifest(MANIFEST)
    assert len(examples) >= 30
    emotions = {ex.labels["emotion"] for ex in examples}
    assert {"neutral", "happy", "sad"} <= emotions
    for ex in examples:
        assert ex.user_audio.is_file() and ex.reply_audio.is_file() and ex.reply_text
    assert example_to_json(examples[0], CORPUS_DIR)["user_audio"] == "wavs/q00.wav"


def test_load_audio_resamples_and_downmixes(tmp_path):
    sr = 44_100
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1).astype(np.float32) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, sr, subtype="FLOAT")
    wav = load_audio(path, 16_000)
    assert wav.ndim == 1 and abs(len(wav) - 16_000) <= 1
    # The 440 Hz tone survives resampling: the spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spectrum) * 16_000 / len(wav) - 440) < 2
    # Arrays are accepted in (C, T) layout too.
    same = load_audio(stereo.T.copy(), 16_000, sampling_rate=sr)
    np.testing.assert_allclose(same, wav, atol=1e-5)


def test_collated_batch_matches_conversation_path(tiny):
    examples = load_manifest(MANIFEST)[:3]
    gen = torch.Generator().manual_seed(0)
    for i, ex in enumerate(examples):
        ex.reply_codes = torch.randint(0, 8192, (5 + 3 * i,), generator=gen).tolist()
    collator = TeacherForcingCollator.for_model(tiny.model, tiny.processor, tiny.speakers)
    batch = collator(examples)
    assert batch["codes"].shape == (3, 12) and batch["code_lengths"].tolist() == [6, 9, 12]
    assert (batch["codes"][0, 5] == tiny.model.talker.codec_eos_token) and (batch["codes"][0, 6:] == tiny.model.talker.codec_pad_token).all()
    cfg = SamplingConfig(do_sample=False)
    via_batch = tiny.model(**batch, sampling=cfg)
    replies = [torch.tensor(tiny.processor.encode_reply(ex.reply_text)) for ex in examples]
    via_api = tiny.teacher_forced([collator.conversation(ex) for ex in examples], replies,
                                  batch["codes"], batch["code_lengths"], cfg)
    torch.testing.assert_close(via_batch.logprobs, via_api.logprobs)
    assert via_batch.mask.sum() == 6 + 9 + 12
    # Masked positions contribute nothing.
    assert (via_batch.logprobs[~via_batch.mask] == 0).all()


def test_shipped_manifests_have_no_bad_lines_or_duplicate_ids():
    from sa_slm.data.manifest import read_manifest

    for name in ("manifest.jsonl", "manifest_codes.jsonl", "manifest_user_emotion.jsonl"):
        examples, bad = read_manifest(CORPUS_DIR / name, codebook_size=8448)
        assert not bad and len(examples) == 40
        assert len({ex.id for ex in examples}) == 40 and not any(ex.id.startswith(str(CORPUS_DIR)) for ex in examples)


def test_trim_silence_keeps_the_loud_span_and_its_padding():
    """Samples above -40 dB of the peak span [300, 700); 0.01 s of padding at 1 kHz is 10 samples each side."""
    from sa_slm.audio import trim_silence

    wav = np.zeros(1000, dtype=np.float32)
    wav[300:700] = 0.5
    wav[100] = wav[900] = 0.004  # below 0.5 * 10^(-40/20) = 0.005: silence
    out = trim_silence(wav, 1000, rel_db=-40.0, pad_s=0.01)
    assert out.size == 420 and out[0] == 0 and out[10] == 0.5 and out[-11] == 0.5 and out[-10] == 0
    wav[100] = 0.006  # now loud: the span starts there
    assert trim_silence(wav, 1000, rel_db=-40.0, pad_s=0.01).size == 700 - 100 + 20
    with pytest.raises(ValueError, match="silent"):
        trim_silence(np.zeros(50, dtype=np.float32), 1000)
