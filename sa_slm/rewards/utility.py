"""The stage-3 utility of every rollout and anchor: the weighted mean of the rewards, gated by WER.

    u_k = sum_i w_i r_ik / sum_i w_i     over the rewards i that apply to the prompt
    u_k = 0                              when WER(transcript_k, reply) > threshold (the gate)

A weight means exactly its share of the utility; the order of the rewards does not matter. A clip
that any applicable reward (or the recogniser) cannot score is dropped from the update.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch

from ..metrics.wer import Transcriber, transcribe_and_score
from ..processor import Conversation
from .base import Reward, RewardInput, RewardNotApplicable

log = logging.getLogger(__name__)


@dataclass
class Utilities:
    policy: torch.Tensor  # (B, K) utility of each rollout (0 where invalid)
    anchor: torch.Tensor  # (B,)
    valid: torch.Tensor  # (B, K) False where the rollout was dropped
    anchor_valid: torch.Tensor  # (B,)
    stats: dict[str, float] = field(default_factory=dict)  # mean of each reward, critic dimension, WER
    failures: list[str] = field(default_factory=list)  # why clips were dropped


@dataclass
class UtilityInput:
    """What a utility function scores: per prompt, K rollouts' codes then the anchor's."""

    contexts: list[Conversation]
    reply_texts: list[str]
    codes: list[list[torch.Tensor]]  # per prompt: K + 1 code sequences (the anchor last), EOS excluded
    labels: list[dict]  # per prompt: its manifest labels


class UtilityFn(Protocol):
    def __call__(self, batch: UtilityInput) -> Utilities: ...


@dataclass
class WERGate:
    transcribe: Transcriber
    threshold: float = 0.2


class RewardUtility:
    """Decode each prompt's clips, score them with every reward, mix, gate by WER.

    decode: code sequences → 24 kHz waveforms (e.g. the frozen reference's Token2Wav).
    """

    def __init__(self, decode: Callable[[list[torch.Tensor]], list[np.ndarray]], rewards: list[Reward],
                 gate: WERGate | None = None, sample_rate: int = 24_000) -> None:
        if not rewards or not sum(r.weight for r in rewards) > 0:
            raise ValueError("the utility needs at least one reward with a positive weight")
        self.decode, self.rewards, self.gate, self.sample_rate = decode, rewards, gate, sample_rate

    def mix(self, inp: RewardInput) -> tuple[list[float | None], dict[str, list[float]], list[str]]:
        """Utilities of one prompt's clips before the gate, the values to log, and the failures."""
        n = len(inp.wavs)
        weighted, total = np.zeros(n), 0.0
        usable = [True] * n
        logged: dict[str, list[float]] = {}
        failures: list[str] = []
        for reward in self.rewards:
            try:
                result = reward(inp)
            except RewardNotApplicable as exc:
                failures.append(f"no {reward.name} reward ({exc})")
                continue
            except Exception as exc:  # noqa: BLE001 - a broken reward costs this prompt's clips, not the run
                failures.append(f"reward {reward.name!r} failed ({type(exc).__name__}: {exc}); clips dropped")
                usable = [False] * n
                continue
            failures += result.failures
            for name, values in result.stats.items():
                logged.setdefault(name, []).extend(values)
            logged.setdefault(f"reward_{reward.name}", []).extend(v for v in result.values if v is not None)
            total += reward.weight
            for k, value in enumerate(result.values):
                if value is None:
                    usable[k] = False
                else:
                    weighted[k] += reward.weight * float(value)
        failures = list(dict.fromkeys(failures))  # rewards sharing one pass (the critic's) report it once
        if total == 0:
            failures.append("no reward applies to this prompt; clips dropped")
            return [None] * n, logged, failures
        return [float(weighted[k] / total) if usable[k] else None for k in range(n)], logged, failures

    def __call__(self, batch: UtilityInput) -> Utilities:
        B, K = len(batch.contexts), len(batch.codes[0]) - 1
        policy, anchor = torch.zeros(B, K), torch.zeros(B)
        valid, anchor_valid = torch.zeros(B, K, dtype=torch.bool), torch.zeros(B, dtype=torch.bool)
        failures: list[str] = []
        logged: dict[str, list[float]] = {}
        for b in range(B):
            wavs = self.decode(batch.codes[b])
            inp = RewardInput(batch.contexts[b], batch.reply_texts[b], wavs, self.sample_rate, dict(batch.labels[b]),
                              codes=[c.tolist() for c in batch.codes[b]])
            utilities, values, reasons = self.mix(inp)
            failures += [f"prompt {b}: {r}" for r in reasons]
            for name, v in values.items():
                logged.setdefault(name, []).extend(v)
            if self.gate is not None:
                scored = transcribe_and_score(wavs, self.sample_rate, [batch.reply_texts[b]] * len(wavs),
                                              self.gate.transcribe)
                for k, result in enumerate(scored):
                    if result.wer is None:
                        failures.append(f"prompt {b}: clip {k}: {result.error}")
                        utilities[k] = None
                        continue
                    logged.setdefault("wer", []).append(result.wer)
                    if utilities[k] is not None and result.wer > self.gate.threshold:
                        utilities[k] = 0.0
            for k in range(K):
                if utilities[k] is not None:
                    policy[b, k], valid[b, k] = utilities[k], True
            if utilities[K] is not None:
                anchor[b], anchor_valid[b] = utilities[K], True
        for f in failures:
            log.warning("dropped: %s", f)
        stats = {name: float(np.mean(v)) for name, v in logged.items() if v}
        return Utilities(policy, anchor, valid, anchor_valid, stats, failures)
