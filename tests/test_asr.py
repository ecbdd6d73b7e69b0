"""ASR backends of the WER gate: the offline PocketSphinx model recognises the shipped corpus."""

import json

import jiwer
import pytest
import soundfile as sf

from sa_slm.asr import load_asr
from sa_slm.errors import SASLMError
from sa_slm.paths import CORPUS_DIR


def _norm(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c == " ").strip()


def test_pocketsphinx_recognises_neutral_espeak_replies():
    asr = load_asr("pocketsphinx")
    rows = [json.loads(line) for line in (CORPUS_DIR / "manifest.jsonl").read_text().splitlines()]
    neutral = [r for r in rows if r["emotion"] == "neutral"]
    refs, hyps = [], []
    for r in neutral:
        wav, sr = sf.read(CORPUS_DIR / r["reply_audio"], dtype="float32")
        refs.append(_norm(r["reply_text"]))
        hyps.append(asr([wav], sr)[0])
    # Measured 0.60 over the 8 neutral replies (synthetic espeak voice, small CMU model); a recogniser
    # that heard nothing scores 1.0, so < 0.75 shows it really transcribes; one clear clip is near-exact.
    assert jiwer.wer(refs, hyps) < 0.75
    best = min(jiwer.wer(r, h) for r, h in zip(refs, hyps))
    assert best <= 0.2


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(SASLMError, match="unknown ASR backend 'kaldi'"):
        load_asr("kaldi")
    with pytest.raises(SASLMError, match="needs the SA-SLM model"):
        load_asr("model")


def test_f0_variance_orders_the_presets_as_synthesised():
    from sa_slm.prosody import f0_variance_reward, f0_variance_semitones

    happy, sr = sf.read(CORPUS_DIR / "wavs" / "r00_happy.wav", dtype="float32")
    sad, _ = sf.read(CORPUS_DIR / "wavs" / "r00_sad.wav", dtype="float32")
    # happy: +80 % pitch range, sad: -60 % (SSML prosody), so the F0 spread must come out larger.
    assert f0_variance_semitones(happy, sr) > 2 * f0_variance_semitones(sad, sr)
    assert 0 <= f0_variance_reward(sad, sr) < f0_variance_reward(happy, sr) < 1
    assert f0_variance_semitones(0 * happy, sr) == 0.0  # silence: no voiced frames
