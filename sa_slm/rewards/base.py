"""Rewards of spoken replies: named, weighted callables (TRL-style) that score one prompt's clips.

A reward sees one prompt at a time (`RewardInput`: its dialogue context, the reply text, the K rollout
clips and the anchor clip, the prompt's manifest labels) and returns one value in [0, 1] per clip, or
None for a clip it could not score (that clip is dropped from the update, with the reason logged). It
raises `RewardNotApplicable` when it has nothing to say about the prompt at all (e.g. no target label),
and the prompt's utility is then the weighted mean of the other rewards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..processor import Conversation


class RewardNotApplicable(Exception):
    """The reward does not apply to this prompt (e.g. it has no target emotion); the message says why."""


@dataclass
class RewardInput:
    """One prompt's clips to score: K rollouts then the anchor, all at `sample_rate`."""

    context: Conversation
    reply_text: str
    wavs: list[np.ndarray]
    sample_rate: int
    labels: dict[str, Any] = field(default_factory=dict)  # the prompt's manifest labels (emotion, ...)
    codes: list[list[int]] | None = None  # the Talker codes each clip was decoded from (EOS excluded), if known
    cache: dict[Any, Any] = field(default_factory=dict)  # shared work between rewards (one critic pass)


@dataclass
class RewardResult:
    values: list[float | None]  # one per clip; None: the clip could not be scored
    failures: list[str] = field(default_factory=list)  # why, one line each
    stats: dict[str, list[float]] = field(default_factory=dict)  # extra per-clip values to log (means)


class Reward:
    """A named reward with its weight in the utility. Subclasses implement `score`."""

    def __init__(self, name: str, weight: float = 1.0) -> None:
        self.name, self.weight = name, weight

    def score(self, inp: RewardInput) -> RewardResult:
        raise NotImplementedError

    def __call__(self, inp: RewardInput) -> RewardResult:
        result = self.score(inp)
        if len(result.values) != len(inp.wavs):
            raise RuntimeError(f"reward {self.name!r} returned {len(result.values)} values for {len(inp.wavs)} clips")
        for k, value in enumerate(result.values):
            problem = out_of_range(value)
            if problem:
                result.values[k] = None
                result.failures.append(f"clip {k}: reward {self.name!r} {problem}")
        return result

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weight={self.weight})"


def out_of_range(value: float | None) -> str | None:
    """Why a reward value is unusable (not a finite number in [0, 1]), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        return f"returned {type(value).__name__}, not a number"
    if not math.isfinite(float(value)) or not 0.0 <= float(value) <= 1.0:
        return f"returned {float(value)}, outside [0, 1]"
    return None
