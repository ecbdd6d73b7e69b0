"""UAPO on the Hugging Face `Trainer`: rollouts, anchor, utilities and the loss inside compute_loss.

Each step, for a batch of prompts: K policy rollouts + one anchor per prompt from the policy the
Trainer passes (no grad; under ZeRO-3 with its shards gathered), utilities from `utility_fn`
(decoding, rewards and the WER gate on the frozen reference), then one teacher-forced forward of that
same policy (with grad) and of the reference (no grad) over all rollout and anchor codes, on the
Thinker states recorded while sampling; r(y) = sum of per-code policy log-probs minus the
reference's, and `uapo_loss` against the anchor.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from trl.models.utils import unwrap_model_for_generation

from ..audio import write_wav
from ..data.manifest import Example
from ..errors import SASLMError
from ..modeling import SASLMOmniModel, SASLMOutput
from ..processor import Conversation, OmniProcessor
from ..rewards import UtilityFn, UtilityInput
from ..seeding import derive_seed
from ..speakers import SpeakerBank
from ..talker.sampling import SamplingConfig
from ..token2wav import SAMPLE_RATE
from ..training.trainer_utils import LoggedTermsTrainer, grouped_optimizer
from .loss import uapo_loss
from .rollouts import RolloutBatch, collect


def frozen_reference(model: SASLMOmniModel) -> SASLMOmniModel:
    """A frozen, unpartitioned copy of the policy at the start of training (pi_ref).

    It stays whole on every rank, also under ZeRO-3 (one bf16 copy of the model per GPU): it is the
    critic, the ASR and the Token2Wav decoder of the self-reward loop, whose decoding loops stop at
    different steps on different ranks, which partitioned weights cannot follow.
    """
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        raise SASLMError("the policy is already ZeRO-3 partitioned; build the reference before DeepSpeed "
                         "initialises the model (load it before creating TrainingArguments)")
    return copy.deepcopy(model).eval().requires_grad_(False)


def rollout_rows(rb: RolloutBatch, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every rollout, then every anchor, as one batch: (B*K + B,) prompt row of each, (B*K + B, N) codes
    padded with `pad_id`, (B*K + B,) steps of each (the terminating id included)."""
    rows = torch.cat([rb.policy.prompt_index.cpu(), torch.arange(len(rb.conversations))])
    codes = pad_sequence([*rb.policy.codes.unbind(0), *rb.anchor.codes.unbind(0)], batch_first=True,
                         padding_value=pad_id)
    return rows, codes, torch.cat([rb.policy.num_steps, rb.anchor.num_steps])


def rollout_logprobs(model, rb: RolloutBatch, sampling: SamplingConfig, pad_id: int = 0) -> SASLMOutput:
    """Per-code log-probs under `model` (policy or reference) of every rollout, then every anchor, given
    its dialogue context x (the anchor too), on the Thinker states recorded during the rollouts.

    One forward call: one bridge pass over the B contexts, each prefix selected for its rows, and one
    Talker pass over all rows. `logprobs` and `mask` are (B*K + B, N).
    """
    device = rb.states.hidden.device
    rows, codes, lengths = rollout_rows(rb, pad_id)
    return model(thinker_states=rb.states, speaker_bos=torch.tensor(rb.speaker_bos, device=device),
                 rows=rows.to(device), codes=codes, code_lengths=lengths, sampling=sampling)


def sequence_logps(model, rb: RolloutBatch, sampling: SamplingConfig, pad_id: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B*K + B,) summed log-probs under `model` of every rollout, then every anchor, given its dialogue
    context x (r(y_anchor) = log pi(y_anchor|x) - log pi_ref(y_anchor|x)), and (B*K + B,) the number of
    codes each sum covers (see `rollout_logprobs`)."""
    out = rollout_logprobs(model, rb, sampling, pad_id)
    return out.logprobs.sum(-1), out.mask.sum(-1)


class UAPOTrainer(LoggedTermsTrainer):
    """UAPO with the policy as `model`, a frozen `reference` model, and the narrow parts the loop needs
    (the processor and speaker bank to build prompts, a utility function to score clips)."""

    def __init__(self, *args, reference: SASLMOmniModel, processor: OmniProcessor, speakers: SpeakerBank,
                 utility_fn: UtilityFn, sampling: SamplingConfig, num_samples: int = 8, beta: float = 0.1,
                 margin_weighting: bool = False, params: list[torch.nn.Parameter] | None = None,
                 max_reply_tokens: int = 256, audio_every: int = 0, audio_clips: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reference, self.processor, self.speakers = reference, processor, speakers
        self.utility_fn, self.sampling, self.num_samples = utility_fn, sampling, num_samples
        self.beta, self.margin_weighting = beta, margin_weighting
        self.params, self.max_reply_tokens = params, max_reply_tokens
        self.audio_every, self.audio_clips = audio_every, audio_clips

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.params is not None:
            self.optimizer = grouped_optimizer(self.args, model, [(self.params, self.args.learning_rate)])
        return super().create_optimizer(model)

    def _save_listening_samples(self, rb: RolloutBatch, util) -> None:
        """A few rollouts of the first prompt and its anchor as wavs, named with their utilities."""
        folder = Path(self.args.output_dir) / "rollout_audio" / f"step{self.state.global_step:07d}"
        n = min(self.audio_clips, rb.num_samples)
        codes = [rb.policy.audio_codes(k) for k in range(n)] + [rb.anchor.audio_codes(0)]
        names = [f"rollout{k}_u{float(util.policy[0, k]):.3f}.wav" for k in range(n)] + [f"anchor_u{float(util.anchor[0]):.3f}.wav"]
        wavs = self.reference.decode_codes(codes, [self.speakers[None]] * len(codes))
        for name, wav in zip(names, wavs):
            write_wav(folder / name, wav.numpy(), SAMPLE_RATE)
        (folder / "reply.txt").write_text(rb.reply_texts[0] + "\n", encoding="utf-8")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        examples: list[Example] = inputs["examples"]
        conversations: list[Conversation] = inputs["conversations"]
        seed = derive_seed(self.args.seed, "uapo step", self.state.global_step, self.args.process_index)
        with warnings.catch_warnings():
            # TRL's unwrap reads transformers' deprecated `is_gradient_checkpointing`: noise in every step.
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            with unwrap_model_for_generation(model, self.accelerator) as policy:  # ZeRO-3: whole weights, hooks off
                rb = collect(policy, self.processor, self.speakers, conversations, [ex.reply_text for ex in examples],
                             self.num_samples, self.sampling, seed, max_reply_tokens=self.max_reply_tokens)
        rb.labels = [dict(ex.labels) for ex in examples]
        B, K = len(examples), self.num_samples
        util = self.utility_fn(UtilityInput(rb.conversations, rb.reply_texts, [rb.clip_codes(b) for b in range(B)],
                                            rb.labels))
        if self.audio_every and self.state.global_step % self.audio_every == 0 and self.is_world_process_zero():
            self._save_listening_samples(rb, util)
        pad_id = self.reference.talker.codec_pad_token
        logp, n_codes = sequence_logps(model, rb, self.sampling, pad_id)
        with torch.no_grad():
            ref_logp, _ = sequence_logps(self.reference, rb, self.sampling, pad_id)
        device = logp.device
        valid = util.valid.to(device) & util.anchor_valid.to(device)[:, None]
        out = uapo_loss(
            logp[: B * K].view(B, K), ref_logp[: B * K].view(B, K), util.policy.to(device),
            logp[B * K:], ref_logp[B * K:], util.anchor.to(device), beta=self.beta,
            margin_weighting=self.margin_weighting, valid=valid,
        )
        pv = util.policy[util.valid]
        self.record(
            model,
            uapo_loss=out.loss,
            utility_policy=float(pv.mean()) if pv.numel() else 0.0,
            utility_anchor=float(util.anchor[util.anchor_valid].mean()) if util.anchor_valid.any() else 0.0,
            win_rate=float((util.policy > util.anchor[:, None])[valid.cpu()].float().mean()) if valid.any() else 0.0,
            n_preferred=float(out.preferred.float().mean()),
            n_rejected=float(out.rejected.float().mean()),
            kl_ref=float(((logp - ref_logp).sum() / n_codes.sum().clamp_min(1)).detach()),
            dropped=float((~util.valid).sum()),
            **util.stats,
        )
        return (out.loss, {"uapo_loss": out.loss.detach()}) if return_outputs else out.loss
