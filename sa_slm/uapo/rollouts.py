"""One UAPO step's data: K policy rollouts per prompt and a context-unaware anchor rollout.

The anchor reads the same reply with no dialogue context and no intent: a plain read-aloud prompt,
conditioning `text` (reply_part = e_t), no acoustic context. It is the reference point the policy's
rollouts must beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..modeling import SASLMOmniModel
from ..pipeline import encode_prompts, speak
from ..processor import READ_ALOUD, Conversation, OmniProcessor
from ..seeding import prompt_seeds
from ..speakers import SpeakerBank
from ..talker.layout import ThinkerStates
from ..talker.rollout import CodeRollouts
from ..talker.sampling import SamplingConfig


@dataclass
class RolloutBatch:
    conversations: list[Conversation]  # B dialogue contexts
    reply_ids: list[torch.Tensor]  # B replies (the same text for the rollouts and the anchor)
    reply_texts: list[str]
    policy: CodeRollouts  # B*K rollouts, row r belongs to prompt r // K
    anchor: CodeRollouts  # B anchor rollouts
    num_samples: int
    # The frozen Thinker's states of the B dialogue contexts + replies (no grad), reused by the
    # teacher-forced passes of the policy and the reference: the Thinker runs only in the rollout phase.
    states: ThinkerStates
    speaker_bos: list[int]  # B Talker speaker ids
    labels: list[dict] = field(default_factory=list)  # B manifest label dicts (target emotion, ...)

    def clip_codes(self, b: int) -> list[torch.Tensor]:
        """Prompt b's K rollout code sequences, then its anchor's (EOS excluded)."""
        K = self.num_samples
        return [self.policy.audio_codes(b * K + k) for k in range(K)] + [self.anchor.audio_codes(b)]


def anchor_states(model: SASLMOmniModel, processor: OmniProcessor, reply_ids: list[torch.Tensor]) -> ThinkerStates:
    """Thinker states of each reply after a plain read-aloud prompt."""
    convs = [Conversation.user(READ_ALOUD) for _ in reply_ids]
    return model.thinker_states(**encode_prompts(processor, model, convs), reply_ids=reply_ids)


@torch.no_grad()
def collect(model: SASLMOmniModel, processor: OmniProcessor, speakers: SpeakerBank, conversations: list[Conversation],
            reply_texts: list[str | None], num_samples: int, sampling: SamplingConfig, seed: int,
            speaker: str | None = None, max_reply_tokens: int = 256) -> RolloutBatch:
    """Replies (given, or the Thinker's greedy answer), K policy rollouts each, and the anchors.

    Rollout k of prompt b draws from `derive_seed(seed, "rollout", b, k)`, its anchor from
    `derive_seed(seed, "anchor", b, 0)`: prompts of a batch never share random draws.
    """
    replies = [torch.tensor(processor.encode_reply(t)) if t else None for t in reply_texts]
    prompts = list(range(len(conversations)))  # a prompt's seed key: its index in the batch
    spoken = speak(model, processor, speakers, conversations, sampling, num_samples, replies, speaker,
                   seeds=prompt_seeds(seed, prompts, num_samples, "rollout"),
                   max_reply_tokens=max_reply_tokens)
    anchor = model.condition(anchor_states(model, processor, spoken.reply_ids), spoken.speaker_bos, mode="text")
    anchor_codes = model.sample_codes(anchor, sampling, 1, prompt_seeds(seed, prompts, 1, "anchor"))
    return RolloutBatch(conversations, spoken.reply_ids, [processor.decode(r) for r in spoken.reply_ids],
                        spoken.codes, anchor_codes, num_samples, spoken.states, spoken.speaker_bos)
