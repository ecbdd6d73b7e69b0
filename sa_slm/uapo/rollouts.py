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
from ..talker.layout import talker_prefix
from ..talker.forward import batch_thinker_states
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


def anchor_rollouts(saslm: SASLM, reply_ids: list[torch.Tensor], sampling: SamplingConfig, seed: int,
                    speaker: str | None = None) -> CodeRollouts:
    """Sample one context-free, intent-free reading of each reply (conditioning `text`)."""
    convs = [Conversation([Turn("user", READ_ALOUD)]) for _ in reply_ids]
    batch = saslm.encode_prompts(convs)
    states = batch_thinker_states(saslm.model, batch, reply_ids)
    _, embeds, mask = states.reply_slices()
    prefix = talker_prefix(saslm.model, states, embeds * mask[..., None], saslm.speaker_bos(speaker, len(reply_ids)))
    return sample_codes(saslm.model, prefix, sampling, 1, [seed])


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
    seeds = [seed * 1009 + k for k in range(num_samples)]
    out = saslm.rollouts(conversations, num_samples, sampling, reply_ids=replies, speaker=speaker, seeds=seeds,
                         decode=False)
    anchor = anchor_rollouts(saslm, replies, sampling, seed * 1009 + num_samples, speaker)
    return RolloutBatch(conversations, replies, out.reply_texts, out.codes, anchor, num_samples)
