"""Utilities of rollouts: the rubric critic's score, gated by WER; failures drop a rollout, not the run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch

from ..critic import RubricCritic
from ..errors import SASLMError
from ..metrics.emotion import EmoAlign
from ..metrics.wer import word_error_rate
from ..model import SASLM
from ..processor import Conversation, Turn
from ..prosody import f0_variance_reward
from ..token2wav import SAMPLE_RATE, decode_codes_batch
from .rollouts import RolloutBatch

log = logging.getLogger(__name__)
TRANSCRIBE_PROMPT = "Transcribe the speech exactly, with no other words."


@dataclass
class Utilities:
    policy: torch.Tensor  # (B, K) utility of each rollout (0 where invalid)
    anchor: torch.Tensor  # (B,)
    valid: torch.Tensor  # (B, K) False where the rollout was dropped
    anchor_valid: torch.Tensor  # (B,)
    stats: dict[str, float] = field(default_factory=dict)  # e.g. mean critic score per dimension, WER
    failures: list[str] = field(default_factory=list)  # why rollouts were dropped


class UtilityFn(Protocol):
    def __call__(self, saslm: SASLM, batch: RolloutBatch) -> Utilities: ...


class ModelASR:
    """The model transcribes audio itself (proxy-free default for the WER gate)."""

    def __init__(self, saslm: SASLM, max_new_tokens: int = 64) -> None:
        self.saslm, self.max_new_tokens = saslm, max_new_tokens

    @torch.no_grad()
    def __call__(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]:
        p = self.saslm.processor
        convs = [Conversation([Turn("user", TRANSCRIBE_PROMPT, p.load_audio(w, sampling_rate=sample_rate))]) for w in wavs]
        ids = self.saslm.generate_replies(self.saslm.encode_prompts(convs), max_new_tokens=self.max_new_tokens,
                                          allow_empty=True)
        return [p.decode(i).strip() for i in ids]


class CriticUtility:
    """u = rubric utility in [0, 1], or 0 when the WER of the rollout against the reply exceeds the gate.

    Each prompt's rollouts and anchor are decoded and scored together (one batched critic pass). A
    failure (exception, non-finite score) falls back to scoring clip by clip and drops only the clips
    that fail, with the reason logged.
    """

    def __init__(self, critic: RubricCritic, wer_threshold: float | None = 0.2,
                 transcribe: Callable[[list[np.ndarray], int], list[str]] | None = None,
                 f0_variance_weight: float = 0.0, emotion: EmoAlign | None = None,
                 emotion_weight: float = 0.0) -> None:
        self.critic, self.wer_threshold = critic, wer_threshold
        self.transcribe = transcribe or ModelASR(critic.model)
        self.f0_weight = f0_variance_weight  # mixes an objective, hard-to-hack reward into the utility
        if emotion_weight > 0 and (emotion is None or not emotion.available):
            raise SASLMError("emotion_reward_weight > 0 needs an external emotion model: "
                             + (emotion.reason if emotion is not None else "none given"))
        self.emotion, self.emotion_weight = emotion, emotion_weight  # external classifier's P(target emotion)

    def _score(self, context, reply_text, wavs, instance) -> tuple[list[float | None], dict[str, list[float]], list[str]]:
        reasons: list[str] = []
        try:
            s = self.critic.score(context, reply_text, wavs, instance_rubric=instance)
            results = [(s, k) for k in range(len(wavs))]
        except Exception as exc:  # noqa: BLE001 - any critic failure: retry clip by clip
            reasons.append(f"batched critic pass failed ({type(exc).__name__}: {exc}); scoring clips one by one")
            results = []
            for k, w in enumerate(wavs):
                try:
                    results.append((self.critic.score(context, reply_text, [w], instance_rubric=instance), 0))
                except Exception as exc_k:  # noqa: BLE001
                    reasons.append(f"clip {k}: critic failed ({type(exc_k).__name__}: {exc_k})")
                    results.append((None, 0))
        utilities, dims = [], {d.name: [] for d in self.critic.rubric.dimensions}
        for k, (s, row) in enumerate(results):
            if s is None:
                utilities.append(None)
                continue
            u = float(s.utility[row])
            if not np.isfinite(u):
                reasons.append(f"clip {k}: non-finite critic score")
                utilities.append(None)
                continue
            utilities.append(u)
            for i, name in enumerate(s.dimensions):
                dims[name].append(float(s.scores[row, i]))
        return utilities, dims, reasons

    def _mix_emotion(self, wavs, target: str, utilities: list[float | None], dims: dict, failures: list[str],
                     b: int) -> list[float | None]:
        """(1 - w) u + w P(target emotion | clip) from the external classifier; a clip it fails on is
        dropped, and a target it has no class for leaves the prompt's utilities unmixed (logged)."""
        scores = self.emotion(wavs, SAMPLE_RATE, [target] * len(wavs))
        if all(s.align is None for s in scores) and scores[0].pred is not None:
            failures.append(f"prompt {b}: no emotion reward ({scores[0].reason})")
            return utilities
        mixed = []
        for k, (u, s) in enumerate(zip(utilities, scores)):
            if s.align is None:
                failures.append(f"prompt {b}: clip {k}: emotion model failed ({s.reason})")
                mixed.append(None)
                continue
            dims.setdefault("emotion_reward", []).append(s.align)
            mixed.append(None if u is None else (1 - self.emotion_weight) * u + self.emotion_weight * s.align)
        return mixed

    def __call__(self, saslm: SASLM, batch: RolloutBatch) -> Utilities:
        K, B = batch.num_samples, len(batch.conversations)
        policy = torch.zeros(B, K)
        anchor = torch.zeros(B)
        valid = torch.zeros(B, K, dtype=torch.bool)
        anchor_valid = torch.zeros(B, dtype=torch.bool)
        failures, wers, dim_values = [], [], {d.name: [] for d in self.critic.rubric.dimensions}
        speaker = saslm.speakers[None]
        for b in range(B):
            codes = [batch.policy.audio_codes(b * K + k) for k in range(K)] + [batch.anchor.audio_codes(b)]
            wavs = [w.numpy() for w in decode_codes_batch(saslm.model, codes, [speaker] * len(codes))]
            instance = self.critic.instance_rubric(batch.conversations[b], batch.reply_texts[b])
            utilities, dims, reasons = self._score(batch.conversations[b], batch.reply_texts[b], wavs, instance)
            failures += [f"prompt {b}: {r}" for r in reasons]
            if self.f0_weight > 0:
                f0 = [f0_variance_reward(w, SAMPLE_RATE) for w in wavs]
                dims.setdefault("f0_variance_reward", []).extend(f0)
                utilities = [None if u is None else (1 - self.f0_weight) * u + self.f0_weight * r
                             for u, r in zip(utilities, f0)]
            target = batch.emotions[b] if batch.emotions else None
            if self.emotion_weight > 0 and target:
                utilities = self._mix_emotion(wavs, target, utilities, dims, failures, b)
            for name, values in dims.items():
                dim_values.setdefault(name, []).extend(values)
            if self.wer_threshold is not None:
                try:
                    texts = self.transcribe(wavs, SAMPLE_RATE)
                except Exception as exc:  # noqa: BLE001 - an ASR failure drops this prompt's clips
                    failures.append(f"prompt {b}: ASR failed ({type(exc).__name__}: {exc}); clips dropped")
                    utilities = [None] * len(wavs)
                    texts = [""] * len(wavs)
                for k, text in enumerate(texts):
                    wer = word_error_rate(batch.reply_texts[b], text)
                    wers.append(wer)
                    if utilities[k] is not None and wer > self.wer_threshold:
                        utilities[k] = 0.0
            for k in range(K):
                if utilities[k] is not None:
                    policy[b, k], valid[b, k] = utilities[k], True
            if utilities[K] is not None:
                anchor[b], anchor_valid[b] = utilities[K], True
        for f in failures:
            log.warning("dropped: %s", f)
        stats = {(name if name.endswith("_reward") else f"critic_{name}"): float(np.mean(v))
                 for name, v in dim_values.items() if v}
        if wers:
            stats["wer"] = float(np.mean(wers))
        return Utilities(policy, anchor, valid, anchor_valid, stats, failures)
