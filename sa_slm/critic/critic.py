"""Score spoken replies with a rubric, read from the model's next-token distribution.

Per dialogue context the model first writes a short instance rubric (greedy). Then, for every
(waveform, dimension) pair, it hears the context and the reply audio, is asked the rubric question,
and the score is the expectation of the answer values under its next-token distribution restricted
to (and renormalised over) the answer tokens. No text is parsed; all pairs go through one batched
Thinker pass (in chunks of `batch_size`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..processor import Conversation, Turn
from ..talker.layout import text_positions
from ..token2wav import SAMPLE_RATE
from .rubric import Rubric, load_rubric

if TYPE_CHECKING:
    from ..model import SASLM


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


class RubricCritic:
    """A rubric bound to a model: the policy itself (self-critic) or any other SA-SLM checkpoint."""

    def __init__(self, model: "SASLM", rubric: Rubric | str = "expressive") -> None:
        self.model = model
        self.rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
        self.answer_ids = self.rubric.answer_token_ids(model.processor.tokenizer)
        self.values = [p.value for p in self.rubric.scale]
        weights = torch.tensor([d.weight for d in self.rubric.dimensions])
        self.weights = weights / weights.sum()

    def _with_system(self, context: Conversation, extra: Turn) -> Conversation:
        return Conversation(list(context.turns) + [extra], self.rubric.system_prompt)

    @torch.no_grad()
    def instance_rubric(self, context: Conversation, reply_text: str) -> str:
        """What emotion and delivery this reply should have here, in the model's own words."""
        prompt = self.rubric.instance_prompt.format(reply_text=reply_text)
        batch = self.model.encode_prompts([self._with_system(context, Turn("user", prompt))])
        ids = self.model.generate_replies(batch, max_new_tokens=self.rubric.instance_max_new_tokens, allow_empty=True)[0]
        return self.model.processor.decode(ids).strip()

    @torch.no_grad()
    def _answer_logits(self, conversations: list[Conversation]) -> torch.Tensor:
        """(N, V) next-token logits at the answer position of each left-padded prompt."""
        batch = self.model.encode_prompts(conversations)
        thinker = self.model.model.thinker
        kwargs = {}
        if "input_features" in batch:
            kwargs = {"input_features": batch["input_features"], "feature_attention_mask": batch["feature_attention_mask"]}
        hidden = thinker.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            position_ids=text_positions(batch["attention_mask"]), use_cache=False, **kwargs,
        ).last_hidden_state[:, -1]
        return thinker.lm_head(hidden).float()

    @torch.no_grad()
    def score(
        self,
        context: Conversation,
        reply_text: str,
        waveforms: list[np.ndarray | torch.Tensor],
        sample_rate: int = SAMPLE_RATE,
        instance_rubric: str | None = None,
        batch_size: int = 16,
    ) -> CriticScores:
        """Scores of K reply waveforms (any rate, given by `sample_rate`) for one dialogue context."""
        rubric = self.rubric
        instance = instance_rubric if instance_rubric is not None else self.instance_rubric(context, reply_text)
        audio = [self.model.processor.load_audio(np.asarray(w, dtype=np.float32), sampling_rate=sample_rate)
                 for w in waveforms]
        rows = [
            self._with_system(context, Turn("user", rubric.question.format(
                reply_text=reply_text, instance_rubric=instance, dimension=d.name, description=d.description), wav))
            for wav in audio for d in rubric.dimensions
        ]
        logits = torch.cat([self._answer_logits(rows[i: i + batch_size]) for i in range(0, len(rows), batch_size)])
        scores = expected_scores(logits, self.answer_ids, self.values).view(len(audio), len(rubric.dimensions)).cpu()
        return CriticScores([d.name for d in rubric.dimensions], scores, scores @ self.weights, instance)
