"""UAPO on the Hugging Face `Trainer`: rollouts, anchor, utilities and the loss inside compute_loss.

Each step, for a batch of prompts: K policy rollouts + one anchor per prompt (no grad; under ZeRO-3
with the policy's shards gathered), utilities from `utility_fn` on the frozen reference (decoding,
critic, ASR), then one teacher-forced pass of the policy (with grad) and of the reference (no grad)
over all rollout and anchor codes, on the Thinker states recorded while sampling; r(y) = sum of
per-code policy log-probs minus the reference's, and `uapo_loss` against the anchor.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from trl.models.utils import unwrap_model_for_generation

from ..audio import write_wav
from ..data.collate import TeacherForcingCollator
from ..data.manifest import Example
from ..errors import SASLMError
from ..model import SASLM
from ..talker.forward import bridged_prefix
from ..talker.layout import TalkerPrefix
from ..talker.sampling import SamplingConfig
from ..talker.teacher_forcing import teacher_forced
from ..token2wav import SAMPLE_RATE, decode_codes_batch
from ..training.trainer_utils import LoggedTermsTrainer, grouped_optimizer
from .loss import uapo_loss
from .rollouts import RolloutBatch, collect
from .utility import UtilityFn


def collate_prompts(examples: list[Example]) -> dict:
    return {"examples": examples}


def frozen_reference(saslm: SASLM) -> SASLM:
    """A frozen, unpartitioned copy of the policy at the start of training (pi_ref).

    It stays whole on every rank, also under ZeRO-3 (one bf16 copy of the model per GPU): it is the
    critic, the ASR and the Token2Wav decoder of the self-reward loop, whose decoding loops stop at
    different steps on different ranks, which partitioned weights cannot follow.
    """
    if any(hasattr(p, "ds_id") for p in saslm.model.parameters()):
        raise SASLMError("the policy is already ZeRO-3 partitioned; build the reference before DeepSpeed "
                         "initialises the model (load it before creating TrainingArguments)")
    ref = copy.deepcopy(saslm.model).eval().requires_grad_(False)
    return SASLM(ref, saslm.processor, saslm.speakers, saslm.config)


def sequence_logps(model, rb: RolloutBatch, sampling: SamplingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(B*K + B,) summed log-probs under `model` (policy or reference) of every rollout, then every
    anchor, given its dialogue context x (the anchor too: r(y_anchor) = log pi(y_anchor|x) - log
    pi_ref(y_anchor|x)), and (B*K + B,) the number of codes each sum covers.

    One bridge pass over the B contexts (each prefix repeated for its rows) and one Talker pass
    over all rows, on the Thinker states recorded during the rollouts.
    """
    prefix, _ = bridged_prefix(model, rb.states, rb.speaker_bos)
    rows = torch.cat([rb.policy.prompt_index, torch.arange(len(rb.conversations), device=rb.policy.prompt_index.device)])
    prefix = TalkerPrefix([prefix.rows[i] for i in rows.tolist()], prefix.stream[rows])
    codes = pad_sequence([*rb.policy.codes.unbind(0), *rb.anchor.codes.unbind(0)], batch_first=True,
                         padding_value=model.talker.codec_pad_token)
    lengths = torch.cat([rb.policy.num_steps, rb.anchor.num_steps])
    tf = teacher_forced(model, prefix, codes, lengths, sampling)
    return tf.logprobs.sum(-1), tf.mask.sum(-1)


class UAPOTrainer(LoggedTermsTrainer):
    def __init__(self, *args, saslm: SASLM, reference: SASLM, utility_fn: UtilityFn, sampling: SamplingConfig,
                 num_rollouts: int = 8, beta: float = 0.1, margin_weighting: bool = False,
                 params: list[torch.nn.Parameter] | None = None, lr: float | None = None,
                 audio_every: int = 0, audio_clips: int = 2, emotion_key: str = "emotion", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.emotion_key = emotion_key
        self.params, self.lr = params, lr
        self.audio_every, self.audio_clips = audio_every, audio_clips
        self.saslm, self.reference, self.utility_fn = saslm, reference, utility_fn
        self.sampling, self.num_rollouts = sampling, num_rollouts
        self.beta, self.margin_weighting = beta, margin_weighting
        self.prompt_collator = TeacherForcingCollator(saslm, require_codes=False)

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.params is not None:
            self.optimizer = grouped_optimizer(self.args, model, [(self.params, self.lr or self.args.learning_rate)])
        return super().create_optimizer(model)

    def _save_listening_samples(self, rb: RolloutBatch, util) -> None:
        """A few rollouts of the first prompt and its anchor as wavs, named with their utilities."""
        folder = Path(self.args.output_dir) / "rollout_audio" / f"step{self.state.global_step:07d}"
        n = min(self.audio_clips, rb.num_samples)
        codes = [rb.policy.audio_codes(k) for k in range(n)] + [rb.anchor.audio_codes(0)]
        names = [f"rollout{k}_u{float(util.policy[0, k]):.3f}.wav" for k in range(n)] + [f"anchor_u{float(util.anchor[0]):.3f}.wav"]
        wavs = decode_codes_batch(self.reference.model, codes, [self.reference.speakers[None]] * len(codes))
        for name, wav in zip(names, wavs):
            write_wav(folder / name, wav.numpy(), SAMPLE_RATE)
        (folder / "reply.txt").write_text(rb.reply_texts[0] + "\n", encoding="utf-8")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        examples: list[Example] = inputs["examples"]
        conversations = [self.prompt_collator.conversation(ex) for ex in examples]
        seed = self.args.seed * 1_000_003 + self.state.global_step
        with unwrap_model_for_generation(model, self.accelerator):  # ZeRO-3: whole weights, hooks off
            rb = collect(self.saslm, conversations, [ex.reply_text for ex in examples], self.num_rollouts,
                         self.sampling, seed)
        rb.emotions = [ex.labels.get(self.emotion_key) for ex in examples]
        util = self.utility_fn(self.reference, rb)  # decoding and critic on the unpartitioned frozen copy
        B, K = len(examples), self.num_rollouts
        if self.audio_every and self.state.global_step % self.audio_every == 0 and self.is_world_process_zero():
            self._save_listening_samples(rb, util)
        logp, n_codes = sequence_logps(self.saslm.model, rb, self.sampling)
        with torch.no_grad():
            ref_logp, _ = sequence_logps(self.reference.model, rb, self.sampling)
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
        return (out.loss, {"uapo": out}) if return_outputs else out.loss
