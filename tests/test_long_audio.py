"""Real-length replies (5-20 s) in stage 0: windowed encoding, random training windows (finding 9)."""

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from sa_slm.codec import SpeechTokenizer, SpeechTokenizerConfig
from sa_slm.codec.data import CodePairDataset, SpeechDataset, collate_pairs
from sa_slm.codec.tokenize import encode
from sa_slm.data.manifest import Example

RATE = 24_000


def _tokenizer(max_codes: int, seed: int = 0) -> SpeechTokenizer:
    torch.manual_seed(seed)
    cfg = SpeechTokenizerConfig(hidden_size=32, num_layers=1, num_heads=2, codebook_size=64, max_codes=max_codes)
    return SpeechTokenizer(cfg).eval()


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Tones gliding under noise bursts: changes every few codes, like speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 150 + 80 * np.sin(2 * np.pi * 0.7 * t)
    wav = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / RATE) * (0.6 + 0.4 * np.sin(2 * np.pi * 3.1 * t))
    return (wav + 0.05 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 1.3 * t) > 0)).astype(np.float32)


def test_25_s_clip_encodes_to_25_s_of_codes(tmp_path):
    tok = _tokenizer(max_codes=200)
    path = tmp_path / "long.wav"
    sf.write(path, _speechlike(25.0), RATE)
    codes = encode(tok, path)
    assert abs(len(codes) - 25 * tok.config.codes_per_second) <= 1
    assert codes.dtype == torch.long and int(codes.min()) >= 0 and int(codes.max()) < 64


def test_clip_shorter_than_a_window_equals_one_pass():
    tok = _tokenizer(max_codes=200)
    wav = torch.from_numpy(_speechlike(3.3))
    single = tok.encode(wav[None])[0]
    assert torch.equal(tok.encode_long([wav])[0], single)
    assert len(single) == int(3.3 * RATE) // 480


def test_windowed_codes_far_from_seams_match_a_larger_window():
    """A clip of ~2.5 windows: windowed codes against one pass of the same weights with a larger
    max_codes. The encoder attends over the whole input and has absolute positions, so only the count is
    exact; the agreement rate is measured and printed (reported, not a target)."""
    small, big = _tokenizer(max_codes=200), _tokenizer(max_codes=600)
    state = {k: v for k, v in small.state_dict().items() if k != "positions.weight"}
    big.load_state_dict(state, strict=False)
    with torch.no_grad():
        big.positions.weight[:200] = small.positions.weight
    wav = torch.from_numpy(_speechlike(10.0, seed=1))  # 500 codes = 2.5 windows
    windowed, single = small.encode_long([wav])[0], big.encode(wav[None])[0]
    assert len(windowed) == len(single) == 500
    agree = (windowed == single).float()
    print(f"\nwindowed vs one pass: {agree.mean():.1%} of all codes, {agree[:150].mean():.1%} of the "
          f"first window's kept codes (absolute positions shared)")
    assert agree[:150].mean() > agree[200:].mean()  # where positions match, the windows agree more


def test_training_window_crops_audio_and_codes_consistently(tmp_path):
    S, W = 480, 50
    cfg = SpeechTokenizerConfig(max_codes=W)
    n = 173  # codes in the clip; each code's samples hold its index / 1000
    wav = np.repeat(np.arange(n, dtype=np.float32) / 1000, S)
    sf.write(tmp_path / "ramp.wav", wav, RATE, subtype="FLOAT")
    ex = Example(id="x", reply_text="t", reply_audio=tmp_path / "ramp.wav", reply_codes=list(range(n)), source="m:1")
    ds = CodePairDataset([ex], cfg, seed=3)
    starts = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        item = ds[0]
        audio, codes = item["audio"].numpy(), item["codes"]
        assert len(audio) == W * S and len(codes) == W
        np.testing.assert_allclose(audio[::S] * 1000, codes.numpy(), atol=1e-3)  # code k <-> samples of k
        assert torch.equal(ds[0]["codes"], codes)  # same item, same epoch: same window
        starts.add(int(codes[0]))
    assert len(starts) > 1  # a new window every epoch


def test_undecodable_clip_is_dropped_from_its_batch(tmp_path, caplog):
    cfg = SpeechTokenizerConfig(max_codes=100)
    sf.write(tmp_path / "ok.wav", _speechlike(0.5), RATE)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    exs = [Example(id=n, reply_text="t", reply_audio=tmp_path / f"{n}.wav", reply_codes=[1] * 25, source=f"m:{i}")
           for i, n in enumerate(["ok", "bad"], start=1)]
    pairs = CodePairDataset(exs, cfg)
    speech = SpeechDataset(exs, cfg)
    with caplog.at_level(logging.WARNING):
        batch = collate_pairs([pairs[0], pairs[1], speech[1], speech[0]])
    assert batch["audio"].shape == (2, 12_000) and batch["is_real"].tolist() == [False, True]
    assert batch["code_lengths"].tolist() == [25, 0]
    assert caplog.text.count("bad.wav: cannot decode audio") == 2 and "dropped from its batch" in caplog.text
    # A batch whose every clip failed has zero rows; the trainer gives it a zero loss instead of failing.
    from transformers import TrainingArguments

    from sa_slm.codec.trainer import SpeechTokenizerTrainer

    empty = collate_pairs([pairs[1], speech[1]])
    assert empty["audio"].shape == (0, 0)
    trainer = SpeechTokenizerTrainer(model=SpeechTokenizer(cfg), train_dataset=pairs, data_collator=collate_pairs,
                                     args=TrainingArguments(output_dir=str(tmp_path / "run"), report_to=[]))
    loss = trainer.compute_loss(trainer.model, empty)
    assert float(loss.detach()) == 0.0 and loss.requires_grad


@pytest.mark.slow
def test_stage0_trains_and_round_trips_on_long_real_speech(tmp_path):
    """Stage 0 with a real-speech manifest of 12-20 s replies (flow matching and round trip on them)."""
    from sa_slm.recipes import stage0

    (tmp_path / "wavs").mkdir()
    rows = []
    for i, seconds in enumerate([12.0, 17.74, 20.0]):  # 17.74 s = 887 codes
        sf.write(tmp_path / "wavs" / f"r{i}.wav", _speechlike(seconds, seed=i), RATE)
        rows.append({"id": f"r{i}", "user_text": "q", "reply_text": f"Reply number {i}.", "reply_audio": f"wavs/r{i}.wav"})
    (tmp_path / "real.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "texts.txt").write_text("Hello there.\nSee you soon!\n")
    out = tmp_path / "stage0"
    # Every clip is longer than the window (max_codes=500 in stage0_tiny): flow matching trains on windows
    # of all three; the round trip encodes the first (600 codes) in windows (one clip: CPU Token2Wav is slow).
    code = stage0.main(["--config", "configs/stage0_tiny.yaml", f"output_dir={out}", "bootstrap.num_samples=1",
                        f"bootstrap.texts_file={tmp_path / 'texts.txt'}", "bootstrap.speakers=[Chelsie]",
                        "bootstrap.sampling.max_new_codes=20", f"real_speech_manifest={tmp_path / 'real.jsonl'}",
                        "train.max_steps=2", "train.save_steps=2", "round_trip_clips=1", "train.logging_steps=1"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["real_round_trip_clips"] == 1
    assert metrics["real_round_trip_mel_l1"] > 0
    state = json.loads((out / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())
    assert all("fm_loss" in e for e in state["log_history"] if "loss" in e)
