"""The property UAPO rests on: teacher-forced log-probs equal the sampler's own.

UAPO samples rollouts with the KV-cached decoding loop and scores them again with one teacher-forced
pass on the Thinker states recorded while sampling. Both must compute the same policy log-prob, and
so must a pass that runs the Thinker again on each row's own prompt. `logprob_agreement` measures
both gaps; the tests hold them to fp32 round-off, and `sa-slm doctor` checks them on the hardware
and dtype of a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from ..modeling import SASLMOmniModel
from ..pipeline import encode_prompts
from ..processor import OmniProcessor
from ..talker.sampling import SamplingConfig
from .rollouts import RolloutBatch
from .trainer import rollout_logprobs, rollout_rows


@dataclass
class LogprobAgreement:
    """Per-code log-probs of every rollout, then every anchor (R = B*K rollout rows, then B anchors)."""

    sampled: torch.Tensor  # (R, T) recorded by the sampler (0 at padding)
    recorded: torch.Tensor  # (R + B, N) teacher-forced on the Thinker states recorded while sampling
    fresh: torch.Tensor  # (R + B, N) teacher-forced with the Thinker run again on each row's own prompt
    mask: torch.Tensor  # (R + B, N) True at real codes

    @property
    def sampled_vs_recorded(self) -> float:
        """Largest per-code |sampler - teacher forcing| over the rollouts."""
        rows, steps = self.sampled.shape
        return float((self.sampled - self.recorded[:rows, :steps]).abs().max())

    @property
    def fresh_vs_recorded(self) -> float:
        """Largest per-code |fresh Thinker pass - recorded states| over rollouts and anchors."""
        return float((self.fresh - self.recorded).abs().max())

    @property
    def num_codes(self) -> int:
        return int(self.mask.sum())


@torch.no_grad()
def logprob_agreement(model: SASLMOmniModel, processor: OmniProcessor, rb: RolloutBatch,
                      sampling: SamplingConfig) -> LogprobAgreement:
    """Score the rollouts and anchors of `rb` (from `uapo.rollouts.collect` with the same `sampling`)
    twice: on the recorded Thinker states, and with each row's prompt encoded and run again on its own
    (other padding, other batch)."""
    recorded = rollout_logprobs(model, rb, sampling)
    rows, codes, lengths = rollout_rows(rb)
    batch = encode_prompts(processor, model, [rb.conversations[i] for i in rows.tolist()])
    replies = [rb.reply_ids[i] for i in rows.tolist()]
    device = batch["input_ids"].device
    fresh = model(**batch, reply_ids=pad_sequence(replies, batch_first=True).to(device),
                  reply_lengths=torch.tensor([len(r) for r in replies]), codes=codes.to(device),
                  code_lengths=lengths, speaker_bos=torch.tensor([rb.speaker_bos[i] for i in rows.tolist()]),
                  sampling=sampling)
    return LogprobAgreement(rb.policy.logprobs.float(), recorded.logprobs.float(), fresh.logprobs.float(),
                            recorded.mask)
