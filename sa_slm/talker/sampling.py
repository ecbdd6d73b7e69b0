"""The Talker's policy distribution and sampler, shared by rollouts and teacher forcing.

Policy log-prob (what RL and the equivalence tests use): log-softmax of the *policy logits*, i.e. the
raw codec logits after the repetition penalty over {prefix codec ids, previous codes}, suppression of
codec-bos, and temperature (1 for greedy decoding). Top-k / top-p only truncate what the sampler draws
from; they do not enter the log-prob. These are exactly the processors transformers' `generate`
applies for the Talker, so greedy codes equal transformers' greedy codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

NEVER_SEEN = torch.iinfo(torch.long).max


@dataclass
class SamplingConfig:
    """Talker decoding knobs. Defaults are the released Qwen2.5-Omni values."""

    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 40
    top_p: float = 0.8
    repetition_penalty: float = 1.05
    max_new_tokens: int = 4096

    @property
    def logprob_temperature(self) -> float:
        return self.temperature if self.do_sample else 1.0


def first_seen_index(codes: torch.Tensor, lengths: torch.Tensor, vocab_size: int, always_seen: list[int]) -> torch.Tensor:
    """(B, V) index of the first step at which each code appears (NEVER_SEEN if never; -1 for `always_seen`).

    codes: (B, N) code ids, lengths: (B,) number of valid steps per row.
    """
    batch, steps = codes.shape
    first = torch.full((batch, vocab_size), NEVER_SEEN, dtype=torch.long, device=codes.device)
    step_idx = torch.arange(steps, device=codes.device).expand(batch, -1)
    step_idx = torch.where(step_idx < lengths[:, None], step_idx, NEVER_SEEN)
    first.scatter_reduce_(1, codes.clamp(0, vocab_size - 1), step_idx, reduce="amin")
    first[:, always_seen] = -1
    return first


def policy_logits(
    logits: torch.Tensor, seen: torch.Tensor, cfg: SamplingConfig, suppress: list[int]
) -> torch.Tensor:
    """Repetition penalty on `seen` codes, suppressed ids at -inf, then temperature. Shapes (..., V)."""
    logits = logits.float()
    if cfg.repetition_penalty != 1.0:
        penalised = torch.where(logits < 0, logits * cfg.repetition_penalty, logits / cfg.repetition_penalty)
        logits = torch.where(seen, penalised, logits)
    if suppress:
        logits = logits.index_fill(-1, torch.tensor(suppress, device=logits.device), float("-inf"))
    return logits / cfg.logprob_temperature


def truncate(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Top-k then top-p truncation (transformers' warpers) of (B, V) policy logits."""
    if cfg.top_k and cfg.top_k > 0:
        logits = TopKLogitsWarper(top_k=cfg.top_k)(None, logits)
    if cfg.top_p is not None and cfg.top_p < 1.0:
        logits = TopPLogitsWarper(top_p=cfg.top_p)(None, logits)
    return logits


class RowSampler:
    """Inverse-CDF sampling with one RNG stream per row, so a row's draws do not depend on its batch."""

    def __init__(self, seeds: list[int]) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """logits: (B, V) truncated policy logits → (B,) sampled ids."""
        uniforms = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.generators])
        probs = torch.softmax(logits.double(), dim=-1)
        cdf = probs.cumsum(-1)
        target = (uniforms.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)
        return torch.searchsorted(cdf, target).squeeze(-1).clamp_max(logits.shape[-1] - 1)
