"""One teacher-forced pass over a collated batch: Thinker states → intent bridge → Talker logits.

Shared by `SASLM` (inference, scoring) and `SASLMOmniModel.forward` (training), so the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..bridge import BridgeOutput
from .layout import TalkerPrefix, ThinkerStates, strip_padding, talker_prefix, thinker_states
from .sampling import SamplingConfig
from .teacher_forcing import TeacherForced, teacher_forced


@dataclass
class TeacherForcedBatch:
    """Everything a training step needs from one Thinker pass + one Talker pass."""

    talker: TeacherForced
    bridge: BridgeOutput
    reply_mask: torch.Tensor  # (B, n_max) True at real reply tokens
    states: ThinkerStates


def batch_thinker_states(model, batch: dict, reply_ids: list[torch.Tensor], with_text_logits: bool = False
                         ) -> ThinkerStates:
    return thinker_states(
        model, strip_padding(batch["input_ids"], batch["attention_mask"]), reply_ids,
        batch.get("input_features"), batch.get("feature_attention_mask"), with_text_logits,
    )


def bridged_prefix(model, states: ThinkerStates, speaker_bos: list[int], use_bridge: bool = True,
                   sample_latent: bool = False) -> tuple[TalkerPrefix, BridgeOutput]:
    """Talker prefixes + reply streams, every reply part formed by `model.intent_bridge`.

    use_bridge=False: stock `h + e` and no acoustic context (A/B listening); sample_latent: draw z.
    """
    hidden, embeds, mask = states.reply_slices()
    extra = None
    if use_bridge:
        bridged = model.intent_bridge(hidden, embeds, sample=sample_latent)
        extra = model.intent_bridge.acoustic(states.audio_states, states.audio_mask)
    else:
        bridged = BridgeOutput(hidden + embeds)
    reply_part = bridged.reply_part * mask[..., None].to(bridged.reply_part.dtype)
    return talker_prefix(model, states, reply_part, speaker_bos, extra), bridged


def teacher_forced_batch(model, batch: dict, sampling: SamplingConfig | None = None, with_text_logits: bool = False,
                         use_bridge: bool = True, sample_latent: bool = False, with_logprobs: bool = True
                         ) -> TeacherForcedBatch:
    """Teacher forcing on a collated batch (keys of data.collate.TeacherForcingCollator)."""
    reply_ids = [r[:n] for r, n in zip(batch["reply_ids"], batch["reply_lengths"].tolist())]
    states = batch_thinker_states(model, batch, reply_ids, with_text_logits)
    prefix, bridged = bridged_prefix(model, states, batch["speaker_bos"].tolist(), use_bridge, sample_latent)
    talker = teacher_forced(model, prefix, batch["codes"], batch["code_lengths"], sampling or SamplingConfig(),
                            with_logprobs)
    return TeacherForcedBatch(talker, bridged, states.reply_slices()[2], states)
