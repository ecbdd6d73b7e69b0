"""Speech tokenizer (stage 0): code rate, batching, persistence, bootstrap resume, manifest tokenizing."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from sa_slm.codec import SpeechTokenizer, SpeechTokenizerConfig
from sa_slm.codec.encoder import LOG_MEL_FLOOR
from sa_slm.codec.bootstrap import BootstrapConfig, bootstrap_pairs
from sa_slm.codec.data import split_by_text
from sa_slm.codec.objectives import code_cross_entropy
from sa_slm.codec.tokenize import encode, tokenize_manifest
from sa_slm.data import load_manifest
from sa_slm.talker.sampling import SamplingConfig


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test draws its random audio, codes and noise from the same seed, whatever ran before it."""
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def small_tokenizer(tiny):
    torch.manual_seed(0)
    cfg = SpeechTokenizerConfig.for_omni(tiny.model.config, hidden_size=32, num_layers=1, num_heads=2)
    return SpeechTokenizer(cfg).eval()


def test_code_rate_follows_token2wav(small_tokenizer):
    cfg = small_tokenizer.config
    assert (cfg.hop_length, cfg.frames_per_code, cfg.samples_per_code) == (240, 2, 480)
    assert cfg.codes_per_second == 50.0 and cfg.codebook_size == 8448
    out = small_tokenizer(torch.randn(1, 24_000 + 479))
    assert out["logits"].shape == (1, 50, 8448)


def test_batched_equals_single_and_padding_is_masked(small_tokenizer):
    audio = torch.randn(2, 12_000)
    lengths = torch.tensor([12_000, 7_000])
    batched = small_tokenizer(audio, lengths)["logits"]
    alone = small_tokenizer(audio[1:, :7_000])["logits"]
    assert batched.shape[1] == 25 and alone.shape[1] == 14
    torch.testing.assert_close(batched[1, :14], alone[0], atol=1e-5, rtol=1e-5)
    # Targets past a row's code length do not change the loss.
    codes = torch.randint(0, 8000, (2, 25))
    noisy = codes.clone()
    noisy[1, 14:] = 0
    out = small_tokenizer(audio, lengths)
    loss_a, _ = code_cross_entropy(out["logits"], out["code_mask"], codes, torch.tensor([25, 14]))
    loss_b, _ = code_cross_entropy(out["logits"], out["code_mask"], noisy, torch.tensor([25, 14]))
    torch.testing.assert_close(loss_a, loss_b)


@pytest.mark.parametrize("mel_norm", ["frame", "level"])
def test_only_the_level_norm_lets_the_encoder_hear_loudness(tiny, mel_norm):
    """Twice the amplitude adds log 2 to every log-mel bin (none near the floor for this noise): the per-frame
    LayerNorm removes it; the level norm keeps the same normalised bins and passes the loudness on in one
    more channel, the frame's mean log-mel mapped from [floor, 0] onto [-1, 1]."""
    cfg = SpeechTokenizerConfig.for_omni(tiny.model.config, hidden_size=32, num_layers=1, num_heads=2,
                                         mel_norm=mel_norm)
    tok = SpeechTokenizer(cfg).eval()
    audio = 0.1 * torch.randn(1, 9_600)
    mel = tok(audio)["mel"]
    assert mel.min() > LOG_MEL_FLOOR + 5  # no bin clamped, so the shift is exactly log 2 everywhere
    torch.testing.assert_close(tok(2 * audio)["mel"], mel + math.log(2), atol=1e-4, rtol=0)
    quiet, loud = tok.mel_norm(mel), tok.mel_norm(mel + math.log(2))
    bins = cfg.n_mels
    torch.testing.assert_close(loud[..., :bins], quiet[..., :bins], atol=1e-4, rtol=0)
    assert quiet.shape[-1] == bins + (mel_norm == "level")
    assert tok.frontend[0].in_channels == quiet.shape[-1]
    if mel_norm == "level":
        half = -LOG_MEL_FLOOR / 2
        torch.testing.assert_close(quiet[..., bins], (mel.mean(-1) + half) / half)
        torch.testing.assert_close(loud[..., bins] - quiet[..., bins], torch.full_like(quiet[..., bins],
                                                                                      math.log(2) / half))


def test_a_tokenizer_saved_without_mel_norm_keeps_the_per_frame_layernorm(small_tokenizer, tmp_path):
    """Tokenizers saved before the option carry no `mel_norm`: they load with the LayerNorm they were trained with."""
    small_tokenizer.save_pretrained(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    config.pop("mel_norm")
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    again = SpeechTokenizer.from_pretrained(tmp_path / "old")
    assert isinstance(again.mel_norm, torch.nn.LayerNorm)
    with pytest.raises(ValueError, match="mel_norm 'bogus'"):
        SpeechTokenizerConfig(mel_norm="bogus")


def test_save_and_reload(small_tokenizer, tmp_path):
    small_tokenizer.save_pretrained(tmp_path / "tok")
    again = SpeechTokenizer.from_pretrained(tmp_path / "tok").eval()
    audio = torch.randn(1, 9_600)
    torch.testing.assert_close(again(audio)["logits"], small_tokenizer(audio)["logits"])


def test_bootstrap_is_resumable_and_deterministic(tiny, tmp_path):
    cfg = BootstrapConfig(texts=["Hello there.", "See you soon!"], speakers=["Chelsie"], num_samples=2,
                          texts_per_batch=1, seed=3, sampling=SamplingConfig(max_new_codes=8))
    parts = (tiny.model, tiny.processor, tiny.speakers)
    manifest = bootstrap_pairs(*parts, tmp_path, cfg, progress=False)
    lines = manifest.read_text().splitlines()
    assert len(lines) == 4
    examples = load_manifest(manifest, codebook_size=8448)
    wav, sr = sf.read(examples[0].reply_audio)
    assert sr == 24_000 and len(wav) == len(examples[0].reply_codes) * 480
    # A rerun finds everything done and writes nothing.
    bootstrap_pairs(*parts, tmp_path, cfg, progress=False)
    assert manifest.read_text().splitlines() == lines
    # An interrupted run (last item missing, torn half line) is repaired and completed identically.
    manifest.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    bootstrap_pairs(*parts, tmp_path, cfg, progress=False)
    assert manifest.read_text().splitlines() == lines
    train, heldout = split_by_text(examples, 0.5, seed=0)
    assert {ex.reply_text for ex in train}.isdisjoint({ex.reply_text for ex in heldout}) and len(heldout) == 2


def test_tokenize_skips_bad_lines_and_resumes(small_tokenizer, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "wavs").mkdir()
    for i, seconds in enumerate([0.5, 0.8, 1.0]):
        sf.write(tmp_path / "wavs" / f"ok{i}.wav", 0.1 * rng.standard_normal(int(16_000 * seconds)), 16_000)
    (tmp_path / "wavs" / "corrupt.wav").write_bytes(b"RIFF....WAVEjunk")
    rows = [{"user_text": "q", "reply_text": "a", "reply_audio": f"wavs/ok{i}.wav"} for i in range(3)]
    rows.insert(1, {"user_text": "q", "reply_text": "a", "reply_audio": "wavs/missing.wav"})
    rows.insert(3, {"user_text": "q", "reply_text": "a", "reply_audio": "wavs/corrupt.wav"})
    rows.append({"user_text": "text only", "reply_text": "no audio here"})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out" / "coded.jsonl"

    report = tokenize_manifest(small_tokenizer, src, out, batch_size=2, progress=False)
    assert (report.encoded, report.skipped, report.passed_through) == (3, 0, 1)
    assert len(report.failed) == 2
    assert report.failed[0].startswith(f"{src}:2:") and "missing.wav: audio file not found" in report.failed[0]
    assert report.failed[1].startswith(f"{src}:4:") and "corrupt.wav: cannot decode audio" in report.failed[1]
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == len(rows)
    for i, seconds in zip([0, 2, 4], [0.5, 0.8, 1.0]):
        assert len(written[i]["reply_codes"]) == int(seconds * 50)
        assert written[i]["reply_audio"] == f"../wavs/ok{[0, 2, 4].index(i)}.wav"  # rebased to out/
    assert "reply_codes" not in written[1] and "reply_codes" not in written[3]
    # The same codes as encoding the file directly.
    assert written[0]["reply_codes"] == encode(small_tokenizer, tmp_path / "wavs" / "ok0.wav").tolist()

    again = tokenize_manifest(small_tokenizer, src, out, batch_size=2, progress=False)
    assert (again.encoded, again.skipped, len(again.failed)) == (0, 3, 2)
    assert [json.loads(line) for line in out.read_text().splitlines()] == written


def test_flow_matching_trains_the_tokenizer_through_frozen_dit(tiny, small_tokenizer):
    from sa_slm.codec.flow_matching import given_code_embeddings, straight_through
    from sa_slm.codec.trainer import FlowMatchingObjective

    dit = tiny.model.token2wav.code2wav_dit_model
    FlowMatchingObjective(dit, tiny.speakers["Chelsie"].cond, tiny.speakers["Chelsie"].ref_mel)  # freezes the DiT
    assert not any(p.requires_grad for p in dit.parameters())
    # Given embeddings equal to the table rows of the codes reproduce the DiT's own forward.
    codes = torch.randint(0, 8000, (1, 10))
    spk = tiny.speakers["Chelsie"]
    kw = dict(hidden_states=torch.randn(1, 20, 80), condition_vector=spk.ref_mel, time_step=torch.tensor([0.4]),
              speaker_embedding=spk.cond.unsqueeze(1).repeat(1, 20, 1), apply_cfg=False)
    with torch.no_grad():
        plain = dit(quantized_code=codes, **kw)
        with given_code_embeddings(dit, dit.text_embed.codec_embed(codes)):
            given = dit(quantized_code=torch.zeros_like(codes), **kw)
    torch.testing.assert_close(plain, given)
    # Straight-through: forward is the one-hot argmax (up to the rounding of `hard + p - p`), backward
    # reaches every logit.
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, generator=gen).requires_grad_()
    st = straight_through(logits)
    torch.testing.assert_close(st.detach(), torch.nn.functional.one_hot(logits.argmax(-1), 7).float(),
                               rtol=0, atol=1e-6)
    (st * torch.randn(4, 7, generator=gen)).sum().backward()
    assert (logits.grad != 0).all()


def test_round_trip_reports_wer_with_an_asr_backend(tiny, small_tokenizer):
    from sa_slm.codec.metrics import round_trip

    wavs = [0.1 * torch.randn(9_600), 0.1 * torch.randn(4_800)]
    texts = ["one two three", "four five"]
    decoder = (tiny.model, tiny.speakers["Chelsie"])
    exact = round_trip(small_tokenizer, *decoder, wavs, progress=False, texts=texts,
                       transcribe=lambda clips, sr: [texts[0] if len(clips[0]) > 5_000 else texts[1]])
    assert exact.wer == 0.0 and exact.clips == 2 and exact.mel_l1 > 0
    assert 0 <= exact.code_agreement <= 1
    wrong = round_trip(small_tokenizer, *decoder, wavs, progress=False, texts=texts,
                       transcribe=lambda clips, sr: ["nothing"])
    assert wrong.wer == 1.0
    assert round_trip(small_tokenizer, *decoder, wavs, progress=False).wer is None
