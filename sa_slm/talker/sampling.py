"""The Talker's policy distribution and sampler, shared by rollouts and teacher forcing.

Policy log-prob (what RL and the equivalence tests use): log-softmax of the *policy logits*, i.e. the
raw codec logits after the repetition penalty over {prefix codec ids, previous codes}, suppression of
codec-bos, and temperature (1 for greedy decoding). Top-k / top-p only truncate what the sampler draws
from; they do not enter the log-prob. These are exactly the processors transformers' `generate`
applies for the Talker, so greedy codes equal transformers' greedy codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from ..config import ConfigError

NEVER_SEEN = torch.iinfo(torch.long).max


@dataclass
class SamplingConfig:
    """How the Talker samples codes: the one sampling schema of every stage, eval and generate config.

    `max_new_codes` is the Talker budget (50 codes per second on the released models); None means the
    model's own default (`SASLMConfig.max_new_codes`).
    """

    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 40  # 0: no top-k truncation
    top_p: float = 0.8  # 1.0: no nucleus truncation
    repetition_penalty: float = 1.05
    max_new_codes: int | None = None

    def __post_init__(self) -> None:
        for key, value, low, low_open, high in (("temperature", self.temperature, 0.0, True, None),
                                                ("top_p", self.top_p, 0.0, True, 1.0),
                                                ("repetition_penalty", self.repetition_penalty, 0.0, True, None)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low or (low_open and value == low) or (high is not None and value > high):
                bound = f"in (0, {high}]" if high is not None else "> 0"
                raise ConfigError(f"sampling.{key}: {value!r} must be a finite number {bound}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ConfigError(f"sampling.top_k: {self.top_k!r} must be an integer >= 0 (0 disables top-k)")
        if self.max_new_codes is not None and (isinstance(self.max_new_codes, bool) or
                                               not isinstance(self.max_new_codes, int) or self.max_new_codes < 1):
            raise ConfigError(f"sampling.max_new_codes: {self.max_new_codes!r} must be a positive integer "
                             "(or null for the model's default)")

    @property
    def logprob_temperature(self) -> float:
        return self.temperature if self.do_sample else 1.0

    def with_budget(self, default_max_new_codes: int) -> "SamplingConfig":
        """This config with `max_new_codes` filled in from a model's default where it is None."""
        if self.max_new_codes is not None:
            return self
        return replace(self, max_new_codes=default_max_new_codes)

    @property
    def budget(self) -> int:
        if self.max_new_codes is None:
            raise ValueError("sampling.max_new_codes is unset; resolve it with with_budget(model default) first")
        return self.max_new_codes


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
