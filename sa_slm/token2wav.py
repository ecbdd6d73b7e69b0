"""Codes → 24 kHz waveform through the Token2Wav DiT + BigVGAN, in fp32, optionally seeded per clip."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from transformers import Qwen2_5OmniForConditionalGeneration
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import RungeKutta4ODESolver

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


def _check_codes(model: Qwen2_5OmniForConditionalGeneration, codes: torch.Tensor) -> None:
    dit = model.config.token2wav_config.dit_config
    if int(codes.max()) >= dit.num_embeds or int(codes.min()) < 0:
        raise ValueError(f"code id {int(codes.max())} is outside the Token2Wav codebook (0..{dit.num_embeds - 1})")
    if codes.numel() * dit.repeats > dit.max_position_embeddings:
        raise InputTooLongError(
            f"{codes.numel()} codes exceed Token2Wav's limit of {dit.max_position_embeddings // dit.repeats}"
        )


@torch.no_grad()
def decode_codes_batch(
    model: Qwen2_5OmniForConditionalGeneration,
    codes: list[torch.Tensor],
    speakers: list[Speaker],
    seeds: list[int | None] | None = None,
    num_steps: int = 10,
    guidance_scale: float = 0.5,
    sway_coefficient: float = -1.0,
    vocoder_batch_size: int | None = None,
) -> list[torch.Tensor]:
    """Decode many code sequences; sequences of equal length share one batched DiT ODE + BigVGAN pass.

    The initial noise of clip i is drawn in order (seeded with seeds[i] when given, else from the
    global stream), exactly as `Qwen2_5OmniToken2WavModel.forward` would draw it clip by clip, so the
    result equals decoding the clips one at a time. Returns (samples,) float32 CPU waveforms.
    vocoder_batch_size: clips per BigVGAN call (default: all on GPU, 4 on CPU, where larger batches
    run slower per clip).
    """
    t2w = model.token2wav
    if t2w.dtype != torch.float32:
        t2w.float()
    dit, vocoder = t2w.code2wav_dit_model, t2w.code2wav_bigvgan_model
    device = next(t2w.parameters()).device
    seeds = seeds if seeds is not None else [None] * len(codes)
    codes = [c.reshape(-1).to(device) for c in codes]
    noise: list[torch.Tensor | None] = []
    for c, seed in zip(codes, seeds):
        if c.numel() == 0:
            noise.append(None)
            continue
        _check_codes(model, c)
        with seeded(seed, device):
            noise.append(torch.randn([1, c.numel() * dit.repeats, dit.mel_dim], dtype=torch.float32, device=device))

    out: list[torch.Tensor] = [torch.zeros(0)] * len(codes)
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(codes):
        if c.numel():
            groups.setdefault(c.numel(), []).append(i)
    for members in groups.values():
        mel = _dit_sample(
            dit,
            torch.stack([codes[i] for i in members]),
            torch.cat([noise[i] for i in members]),
            torch.cat([speakers[i].cond.to(device).float() for i in members]),
            torch.cat([speakers[i].ref_mel.to(device).float() for i in members]),
            num_steps, guidance_scale, sway_coefficient,
        )
        chunk = vocoder_batch_size or (len(members) if device.type == "cuda" else 4)
        wavs = torch.cat([vocoder(m).reshape(len(m), -1).float().cpu() for m in mel.split(chunk)])
        for row, i in enumerate(members):
            out[i] = wavs[row]
    return out


def _dit_sample(dit, codes, noise, cond, ref_mel, num_steps, guidance_scale, sway_coefficient) -> torch.Tensor:
    """`Qwen2_5OmniToken2WavDiTModel.sample` with the initial noise given: (G, N) codes → (G, mel, frames)."""
    cond = cond.unsqueeze(1).repeat(1, noise.shape[1], 1)

    def velocity(t, x):
        if guidance_scale < 1e-5:
            return dit(hidden_states=x, speaker_embedding=cond, condition_vector=ref_mel, quantized_code=codes,
                       time_step=t, drop_audio_conditioning=False, drop_code=False, apply_cfg=False)
        out = dit(hidden_states=x, quantized_code=codes, speaker_embedding=cond, condition_vector=ref_mel,
                  time_step=t, apply_cfg=True)
        guided, null = torch.chunk(out, 2, dim=0)
        return guided + (guided - null) * guidance_scale

    times = torch.linspace(0, 1, num_steps, device=noise.device, dtype=cond.dtype)
    if sway_coefficient is not None:
        times += sway_coefficient * (torch.cos(torch.pi / 2 * times) - 1 + times)
    trajectory = RungeKutta4ODESolver(function=velocity, initial_value=noise).integrate(times)
    return trajectory[-1].permute(0, 2, 1)


def decode_codes(
    model: Qwen2_5OmniForConditionalGeneration,
    codes: torch.Tensor,
    speaker: Speaker,
    seed: int | None = None,
    **kwargs,
) -> torch.Tensor:
    """(N,) audio codes (no EOS) → (samples,) float32 waveform at 24 kHz on the CPU."""
    return decode_codes_batch(model, [codes], [speaker], [seed], **kwargs)[0]
