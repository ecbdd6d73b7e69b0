"""Score spoken replies with a rubric, read from the model's next-token distribution.

Per dialogue context the model first writes a short instance rubric (greedy). Then, for every
(waveform, dimension) pair, it hears the context and the reply audio, is asked the rubric question,
and the score is the expectation of the answer values under its next-token distribution restricted
to (and renormalised over) the answer tokens. No text is parsed; all pairs go through one batched
Thinker pass (in chunks of `batch_size`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from ..metrics.failures import Isolated, isolate_failures
from ..padding import left_pad, strip_padding
from ..pipeline import encode_prompts, model_device
from ..processor import Conversation, OmniProcessor, Turn
from ..talker.layout import text_positions
from ..token2wav import SAMPLE_RATE
from .rubric import Rubric, load_rubric

if TYPE_CHECKING:
    from ..modeling import SASLMOmniModel


def expected_scores(logits: torch.Tensor, answer_ids: list[int], values: list[float]) -> torch.Tensor:
    """(N, V) next-token logits → (N,) sum_a p(a) value(a), p renormalised over the answer tokens."""
    probs = torch.softmax(logits[:, answer_ids].float(), dim=-1)
    return probs @ torch.tensor(values, dtype=probs.dtype, device=probs.device)


@dataclass
class CriticScores:
    dimensions: list[str]
    scores: torch.Tensor  # (K, D) per waveform and dimension, in [0, 1]
    utility: torch.Tensor  # (K,) weighted mean over dimensions
    instance_rubric: str

    def as_dict(self, k: int = 0) -> dict:
        return {"scores": {d: float(self.scores[k, i]) for i, d in enumerate(self.dimensions)},
                "utility": float(self.utility[k]), "instance_rubric": self.instance_rubric}


@dataclass
class ClipScore:
    """One clip's rubric scores: per dimension in [0, 1] and the rubric-weighted utility."""

    scores: dict[str, float]
    utility: float


class RubricCritic:
    """A rubric bound to a model and its processor: the policy itself (self-critic) or any other
    SA-SLM checkpoint."""

    def __init__(self, model: "SASLMOmniModel", processor: OmniProcessor, rubric: Rubric | str = "expressive") -> None:
        self.model, self.processor = model, processor
        self.rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
        self.answer_ids = self.rubric.answer_token_ids(processor.tokenizer)
        self.values = [p.value for p in self.rubric.scale]
        weights = torch.tensor([d.weight for d in self.rubric.dimensions])
        self.weights = weights / weights.sum()

    def _with_system(self, context: Conversation, extra: Turn) -> Conversation:
        return Conversation(list(context.turns) + [extra], self.rubric.system_prompt)

    @torch.no_grad()
    def instance_rubric(self, context: Conversation, reply_text: str) -> str:
        """What emotion and delivery this reply should have here, in the model's own words."""
        prompt = self.rubric.instance_prompt.format(reply_text=reply_text)
        batch = encode_prompts(self.processor, self.model, [self._with_system(context, Turn("user", prompt))])
        ids = self.model.generate_replies(**batch, max_new_tokens=self.rubric.instance_max_new_tokens,
                                          allow_empty=True)[0]
        return self.processor.decode(ids).strip()

    @torch.no_grad()
    def _answer_logits(self, conversations: list[Conversation]) -> torch.Tensor:
        """(N, V) next-token logits at the answer position of each left-padded prompt."""
        batch = encode_prompts(self.processor, self.model, conversations)
        thinker = self.model.thinker
        kwargs = {}
        if "input_features" in batch:
            kwargs = {"input_features": batch["input_features"], "feature_attention_mask": batch["feature_attention_mask"]}
        hidden = thinker.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            position_ids=text_positions(batch["attention_mask"]), use_cache=False, **kwargs,
        ).last_hidden_state[:, -1]
        return thinker.lm_head(hidden).float()

    @torch.no_grad()
    def _answer_logits_shared(self, conversations: list[Conversation], groups: int) -> torch.Tensor:
        """Like `_answer_logits` for `groups` runs of D consecutive rows that share a token prefix (one
        clip, D dimensions): the prefix, with all its audio, runs once per clip with a KV cache and the
        D short suffixes reuse it. Falls back to full rows when a suffix would contain audio."""
        D = len(conversations) // groups
        tokens = self.processor(conversations, with_features=False)  # ids only: cheap
        real = strip_padding(tokens["input_ids"], tokens["attention_mask"])
        audio_id = self.processor.audio_token_id
        prefixes, suffixes = [], []
        for g in range(groups):
            members = real[g * D:(g + 1) * D]
            first = members[0]
            c = min(len(m) for m in members) - 1
            for m in members[1:]:
                differs = (m[:c] != first[:c]).nonzero()
                c = min(c, int(differs[0]) if len(differs) else c)
            if any((m[c:] == audio_id).any() for m in members):
                return self._answer_logits(conversations)
            prefixes.append(first[:c])
            suffixes += [m[c:] for m in members]
        thinker = self.model.thinker
        device = model_device(self.model)
        pad_id = self.processor.tokenizer.pad_token_id
        prefix_ids, prefix_mask = left_pad([p.to(device) for p in prefixes], pad_id)
        kwargs = {}
        firsts = encode_prompts(self.processor, self.model, [conversations[g * D] for g in range(groups)])  # one row per clip
        if "input_features" in firsts:
            kwargs = {"input_features": firsts["input_features"], "feature_attention_mask": firsts["feature_attention_mask"]}
        out = thinker.model(input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=text_positions(prefix_mask),
                            use_cache=True, **kwargs)
        cache = out.cache
        cache.batch_repeat_interleave(D)
        suffixes = [x.to(device) for x in suffixes]
        suffix_ids = pad_sequence(suffixes, batch_first=True, padding_value=pad_id)
        suffix_mask = pad_sequence([torch.ones_like(x) for x in suffixes], batch_first=True)
        mask = torch.cat([prefix_mask.repeat_interleave(D, 0), suffix_mask], dim=1)
        start = prefix_mask.sum(-1).repeat_interleave(D)[:, None]
        positions = (start + torch.arange(suffix_ids.shape[1], device=start.device)[None]).unsqueeze(0).expand(3, -1, -1)
        hidden = thinker.model(input_ids=suffix_ids, attention_mask=mask, position_ids=positions, cache=cache,
                               use_cache=True).last_hidden_state
        last = hidden[torch.arange(len(suffixes)), suffix_mask.sum(-1) - 1]
        return thinker.lm_head(last).float()

    @torch.no_grad()
    def score(
        self,
        context: Conversation,
        reply_text: str,
        waveforms: list[np.ndarray | torch.Tensor],
        sample_rate: int = SAMPLE_RATE,
        instance_rubric: str | None = None,
        batch_size: int = 16,
        share_prefix: bool = True,
    ) -> CriticScores:
        """Scores of K reply waveforms (any rate, given by `sample_rate`) for one dialogue context."""
        rubric = self.rubric
        instance = instance_rubric if instance_rubric is not None else self.instance_rubric(context, reply_text)
        audio = [self.processor.load_audio(np.asarray(w, dtype=np.float32), sampling_rate=sample_rate)
                 for w in waveforms]
        rows = [
            self._with_system(context, Turn("user", rubric.question.format(
                reply_text=reply_text, instance_rubric=instance, dimension=d.name, description=d.description), wav))
            for wav in audio for d in rubric.dimensions
        ]
        D = len(rubric.dimensions)
        if share_prefix and D > 1:  # one prefix pass per clip, D suffixes on its KV cache
            clips_per_chunk = max(1, batch_size // D)
            chunks = [rows[i: i + clips_per_chunk * D] for i in range(0, len(rows), clips_per_chunk * D)]
            logits = torch.cat([self._answer_logits_shared(c, len(c) // D) for c in chunks])
        else:
            logits = torch.cat([self._answer_logits(rows[i: i + batch_size]) for i in range(0, len(rows), batch_size)])
        scores = expected_scores(logits, self.answer_ids, self.values).view(len(audio), len(rubric.dimensions)).cpu()
        return CriticScores([d.name for d in rubric.dimensions], scores, scores @ self.weights, instance)

    def score_clips(self, context: Conversation, reply_text: str, waveforms: list[np.ndarray | torch.Tensor],
                    sample_rate: int = SAMPLE_RATE, instance_rubric: str | None = None) -> "Isolated[ClipScore]":
        """`score` under the per-clip failure policy (`metrics.failures.isolate_failures`): a failing
        batch is retried clip by clip; a clip that fails, or scores NaN/inf, has no score and a reason.
        Stage 3's rubric rewards and the evaluation's critic columns both score through here."""
        instance = instance_rubric if instance_rubric is not None else self.instance_rubric(context, reply_text)

        def batch(clips: list) -> list[ClipScore]:
            s = self.score(context, reply_text, clips, sample_rate=sample_rate, instance_rubric=instance)
            return [ClipScore(row["scores"], row["utility"]) for row in map(s.as_dict, range(len(clips)))]

        def finite(c: ClipScore) -> str | None:
            values = [c.utility, *c.scores.values()]
            return None if all(math.isfinite(v) for v in values) else "non-finite critic score"

        return isolate_failures(batch, list(waveforms), "critic", check=finite)
