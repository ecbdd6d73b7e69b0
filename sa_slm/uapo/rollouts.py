"""One UAPO step's data: K policy rollouts per prompt and a context-unaware anchor rollout.

The anchor reads the same reply with no dialogue context and no intent: a plain read-aloud prompt,
conditioning `text` (reply_part = e_t), no acoustic context. It is the reference point the policy's
rollouts must beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model import SASLM
from ..processor import READ_ALOUD, Conversation, Turn
from ..talker.forward import batch_thinker_states
from ..talker.layout import TalkerPrefix, ThinkerStates, talker_prefix
from ..talker.rollout import CodeRollouts, sample_codes
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
    emotions: list[str | None] | None = None  # B target emotions (manifest label) for an emotion reward


def anchor_prefix(model, states: ThinkerStates, speaker_bos: list[int]) -> TalkerPrefix:
    """Context-free, intent-free Talker prefixes: conditioning `text` (reply_part = e_t)."""
    _, embeds, mask = states.reply_slices()
    return talker_prefix(model, states, embeds * mask[..., None], speaker_bos)


def anchor_states(saslm: SASLM, reply_ids: list[torch.Tensor]) -> ThinkerStates:
    """Thinker states of each reply after a plain read-aloud prompt."""
    convs = [Conversation([Turn("user", READ_ALOUD)]) for _ in reply_ids]
    return batch_thinker_states(saslm.model, saslm.encode_prompts(convs), reply_ids)


@torch.no_grad()
def collect(saslm: SASLM, conversations: list[Conversation], reply_texts: list[str | None], num_samples: int,
            sampling: SamplingConfig, seed: int, speaker: str | None = None) -> RolloutBatch:
    """Replies (given, or the Thinker's greedy answer), K policy rollouts each, and the anchors."""
    batch = saslm.encode_prompts(conversations)
    replies: list[torch.Tensor | None] = [
        torch.tensor(saslm.processor.encode_reply(t)) if t else None for t in reply_texts
    ]
    if any(r is None for r in replies):
        generated = saslm.generate_replies(batch)
        replies = [r if r is not None else g for r, g in zip(replies, generated)]
    spk = saslm.speaker_bos(speaker, len(replies))
    states = saslm.thinker_states(batch, replies)
    prefix, _ = saslm.talker_prefix(states, spk)
    policy = sample_codes(saslm.model, prefix, sampling, num_samples, [seed * 1009 + k for k in range(num_samples)])
    anchor = sample_codes(saslm.model, anchor_prefix(saslm.model, anchor_states(saslm, replies), spk), sampling, 1,
                          [seed * 1009 + num_samples])
    return RolloutBatch(conversations, replies, [saslm.processor.decode(r) for r in replies], policy, anchor,
                        num_samples, states, spk)
