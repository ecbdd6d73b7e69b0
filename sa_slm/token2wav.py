"""Codes → 24 kHz waveform through the Token2Wav DiT + BigVGAN, in fp32, optionally seeded per clip."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from transformers import Qwen2_5OmniForConditionalGeneration

from .errors import InputTooLongError
from .speakers import Speaker

SAMPLE_RATE = 24_000  # BigVGAN output rate of the released Token2Wav


def codes_per_second(model: Qwen2_5OmniForConditionalGeneration) -> float:
    """Talker code rate: mel frames per second (rate / hop) divided by the DiT's `repeats`."""
    t2w = model.config.token2wav_config
    hop = 1
    for r in t2w.bigvgan_config.upsample_rates:
        hop *= r
    return SAMPLE_RATE / hop / t2w.dit_config.repeats


def seeded(seed: int | None, device: torch.device):
    """Fork torch's RNG (CPU and the device's) and seed it; a no-op context when seed is None."""
    if seed is None:
        return nullcontext()
    devices = [device] if device.type == "cuda" else []

    class _Ctx:
        def __enter__(self):
            self.fork = torch.random.fork_rng(devices=devices)
            self.fork.__enter__()
            torch.manual_seed(seed)

        def __exit__(self, *exc):
            return self.fork.__exit__(*exc)

    return _Ctx()


@torch.no_grad()
def decode_codes(
    model: Qwen2_5OmniForConditionalGeneration,
    codes: torch.Tensor,
    speaker: Speaker,
    seed: int | None = None,
    num_steps: int = 10,
    guidance_scale: float = 0.5,
    sway_coefficient: float = -1.0,
) -> torch.Tensor:
    """(N,) audio codes (no EOS) → (samples,) float32 waveform at 24 kHz on the CPU."""
    t2w = model.token2wav
    device = next(t2w.parameters()).device
    codes = codes.reshape(-1).to(device)
    if codes.numel() == 0:
        return torch.zeros(0)
    dit = model.config.token2wav_config.dit_config
    if int(codes.max()) >= dit.num_embeds or int(codes.min()) < 0:
        raise ValueError(f"code id {int(codes.max())} is outside the Token2Wav codebook (0..{dit.num_embeds - 1})")
    if codes.numel() * dit.repeats > dit.max_position_embeddings:
        raise InputTooLongError(
            f"{codes.numel()} codes exceed Token2Wav's limit of {dit.max_position_embeddings // dit.repeats}"
        )
    if t2w.dtype != torch.float32:
        t2w.float()
    with seeded(seed, device):
        wav = t2w(
            codes[None],
            conditioning=speaker.cond.to(device).float(),
            reference_mel=speaker.ref_mel.to(device).float(),
            num_steps=num_steps,
            guidance_scale=guidance_scale,
            sway_coefficient=sway_coefficient,
        )
    return wav.reshape(-1).float().cpu()
