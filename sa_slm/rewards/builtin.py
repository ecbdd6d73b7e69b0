"""The shipped rewards: rubric-critic dimensions, F0 variance, an external emotion model, and any user
function given by import path."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..critic import RubricCritic
from ..metrics.emotion import EmoAlign
from ..metrics.failures import isolate_failures
from ..prosody import f0_variance_reward
from .base import Reward, RewardInput, RewardNotApplicable, RewardResult


class RubricReward(Reward):
    """The rubric critic's rubric-weighted mean over `dimensions` (default: all of them).

    Every rubric reward on one critic shares one scoring pass per prompt (its result is cached on the
    `RewardInput`, and its failures reported by each reward are logged once by the utility); the
    failure policy is `RubricCritic.score_clips`'. Logs `critic_<dimension>`.
    """

    def __init__(self, name: str, weight: float, critic: RubricCritic, dimensions: list[str] | None = None) -> None:
        super().__init__(name, weight)
        known = [d.name for d in critic.rubric.dimensions]
        unknown = sorted(set(dimensions or []) - set(known))
        if unknown:
            raise ValueError(f"reward {name!r}: unknown rubric dimension(s) {unknown}; {critic.rubric.name} has {known}")
        self.critic = critic
        self.dimensions = list(dimensions) if dimensions else known
        weights = {d.name: d.weight for d in critic.rubric.dimensions}
        self.weights = {d: weights[d] for d in self.dimensions}

    def score(self, inp: RewardInput) -> RewardResult:
        key = ("rubric", id(self.critic))
        if key not in inp.cache:
            inp.cache[key] = self.critic.score_clips(inp.context, inp.reply_text, inp.wavs, inp.sample_rate)
        clips = inp.cache[key]
        total = sum(self.weights.values())
        values = [None if c is None else sum(w * c.scores[d] for d, w in self.weights.items()) / total
                  for c in clips.results]
        stats = {f"critic_{d}": [c.scores[d] for c in clips.results if c is not None] for d in self.dimensions}
        return RewardResult(values, list(clips.reasons), stats)


class F0VarianceReward(Reward):
    """An objective, hard-to-hack prosody reward: 1 - exp(-F0 variance / scale), variance in semitones²."""

    def __init__(self, name: str, weight: float, scale: float = 4.0) -> None:
        super().__init__(name, weight)
        if not scale > 0:
            raise ValueError(f"reward {name!r}: scale must be > 0, got {scale}")
        self.scale = scale

    def score(self, inp: RewardInput) -> RewardResult:
        clips = isolate_failures(lambda ws: [f0_variance_reward(w, inp.sample_rate, self.scale) for w in ws],
                                 inp.wavs, "f0 variance")
        return RewardResult(clips.results, clips.reasons)


class EmotionModelReward(Reward):
    """P(target emotion | clip) from an external classifier (emotion2vec through funasr, local folder).

    The target is the prompt's `label` (default `emotion`); a prompt without one, or with one the
    classifier has no class for, gets no emotion reward (`RewardNotApplicable`, the reason logged).
    """

    def __init__(self, name: str, weight: float, model_dir: str | None = None, label: str = "emotion",
                 emotion: EmoAlign | None = None) -> None:
        super().__init__(name, weight)
        self.emotion = emotion if emotion is not None else EmoAlign(model_dir)
        if not self.emotion.available:
            raise ValueError(f"reward {name!r} needs an external emotion model: {self.emotion.reason}")
        self.label = label

    def score(self, inp: RewardInput) -> RewardResult:
        target = inp.labels.get(self.label)
        if not isinstance(target, str) or not target:
            raise RewardNotApplicable(f"the prompt has no '{self.label}' label")
        scores = self.emotion(inp.wavs, inp.sample_rate, [target] * len(inp.wavs))
        if all(s.align is None for s in scores) and scores[0].pred is not None:
            raise RewardNotApplicable(scores[0].reason or "the classifier has no class for the target")
        failures = [f"clip {k}: emotion model failed ({s.reason})" for k, s in enumerate(scores) if s.align is None]
        return RewardResult([s.align for s in scores], failures)


class FunctionReward(Reward):
    """A user function `fn(wavs, sample_rate, *, reply_text, labels, **args) -> list[float | None]`, one
    value in [0, 1] per clip, under the per-clip failure policy. A function with a `codes` parameter also
    gets the Talker codes each clip was decoded from (a list of int lists, one per clip)."""

    def __init__(self, name: str, weight: float, fn: Callable[..., Any], args: dict[str, Any] | None = None) -> None:
        super().__init__(name, weight)
        self.fn, self.args = fn, dict(args or {})
        try:
            self.wants_codes = "codes" in inspect.signature(fn).parameters
        except (TypeError, ValueError):  # a builtin or C callable without a signature
            self.wants_codes = False

    def score(self, inp: RewardInput) -> RewardResult:
        if self.wants_codes and (inp.codes is None or len(inp.codes) != len(inp.wavs)):
            raise RewardNotApplicable(f"reward {self.name!r} scores Talker codes, and these clips came without them")
        # Each clip travels with its codes, so a clip retried alone keeps them.
        items = list(zip(inp.wavs, inp.codes if self.wants_codes else [None] * len(inp.wavs)))

        def call(batch: list[tuple[np.ndarray, list[int] | None]]) -> list[Any]:
            extra = {"codes": [c for _, c in batch]} if self.wants_codes else {}
            return list(self.fn([w for w, _ in batch], inp.sample_rate, reply_text=inp.reply_text,
                                labels=dict(inp.labels), **extra, **self.args))

        clips = isolate_failures(call, items, f"reward {self.name!r}")
        values = [None if v is None else (float(v) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                          else v) for v in clips.results]
        return RewardResult(values, clips.reasons)


def import_function(path: str) -> Callable[..., Any]:
    """`package.module:function` → the callable; ValueError naming what is wrong."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"reward function {path!r} must be a built-in name or 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"reward function {path!r}: cannot import {module_name!r} ({exc})") from exc
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ValueError(f"reward function {path!r}: {module_name} has no {attr!r}")
    if not callable(fn):
        raise ValueError(f"reward function {path!r} is not callable")
    return fn


@dataclass
class RubricArgs:
    dimensions: list[str] | None = None  # None: every dimension, with the rubric's weights


@dataclass
class F0VarianceArgs:
    scale: float = 4.0  # semitones²: a 2-semitone spread scores 0.63


@dataclass
class EmotionModelArgs:
    model_dir: str | None = None  # local emotion2vec folder (funasr extra)
    label: str = "emotion"  # manifest label holding the prompt's target emotion


#: built-in reward name → its arguments' schema
BUILTIN_ARGS: dict[str, type] = {"rubric": RubricArgs, "f0_variance": F0VarianceArgs,
                                 "emotion_model": EmotionModelArgs}
