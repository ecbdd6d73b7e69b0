"""Stage 3: closed-loop self-reward with UAPO (Talker + intent bridge).

    python -m sa_slm.recipes.stage3 --config configs/stage3_tiny.yaml [key=value ...]
    make stage3 CONFIG=configs/stage3_3b.yaml

Per prompt: K rollouts of the policy and a context-unaware anchor; the utility of each is the weighted
mean of the configured rewards (rubric critic dimensions, F0 variance, an emotion model, user
functions), gated by WER; UAPO pushes the policy towards rollouts that beat the anchor, against a
frozen reference. Resumes from the last complete checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..asr import load_asr
from ..config import dump_config, torch_dtype
from ..critic import RubricCritic, load_rubric
from ..data import ExampleDataset, PromptCollator, audited_manifest, user_audio_limits
from ..facade import SASLM
from ..presets import model_config
from ..rewards import RewardUtility, WERGate, build_rewards, check_rewards
from ..token2wav import SAMPLE_RATE
from ..training.trainer_utils import training_arguments
from ..uapo.config import UAPOConfig
from ..uapo.trainer import UAPOTrainer, frozen_reference
from .common import recipe_main, save_model_output


def run(cfg: UAPOConfig) -> dict:
    out = Path(cfg.output_dir)
    # Everything checkable before the policy (and its reference copy) load: minutes at 7B.
    model_config(cfg.model)
    if cfg.critic_model:
        model_config(cfg.critic_model, "critic_model")
    rubric = load_rubric(cfg.rubric)
    check_rewards(cfg.rewards, rubric)
    rate, max_seconds = user_audio_limits(cfg.model)  # bad prompts: skipped per on_bad_item, listed in audit.jsonl
    prompts = audited_manifest(cfg.prompts_manifest, cfg.on_bad_item, cfg.output_dir, "audit",
                               max_audio_seconds=max_seconds, sample_rate=rate)
    dump_config(cfg, out / "config.yaml")

    saslm = SASLM.from_pretrained(cfg.model, dtype=torch_dtype(cfg.dtype), seed=cfg.seed, bridge=cfg.bridge)
    reference = frozen_reference(saslm.model)
    judge = SASLM.from_pretrained(cfg.critic_model, dtype=torch_dtype(cfg.dtype)) if cfg.critic_model else None
    judge_model, judge_processor = (judge.model, judge.processor) if judge else (reference, saslm.processor)
    rewards = build_rewards(cfg.rewards, RubricCritic(judge_model, judge_processor, rubric))
    gate = None
    if cfg.wer_gate.threshold is not None:
        gate = WERGate(load_asr(cfg.wer_gate.asr, judge_model, judge_processor), cfg.wer_gate.threshold)
    speaker = saslm.speakers[None]

    def decode(codes):  # on the unpartitioned frozen copy
        return [w.numpy() for w in reference.decode_codes(codes, [speaker] * len(codes))]

    groups = saslm.model.set_trainable()
    args = training_arguments(cfg.train, out / "checkpoints", cfg.seed)
    trainer = UAPOTrainer(
        model=saslm.model, args=args, train_dataset=ExampleDataset(prompts),
        data_collator=PromptCollator(saslm.processor, drop_failures=True), reference=reference, processor=saslm.processor,
        speakers=saslm.speakers, utility_fn=RewardUtility(decode, rewards, gate, SAMPLE_RATE),
        sampling=saslm.sampling(cfg.sampling), num_samples=cfg.num_samples, beta=cfg.beta,
        margin_weighting=cfg.margin_weighting, params=groups["speech"], max_reply_tokens=cfg.max_reply_tokens,
        audio_every=cfg.audio_every, audio_clips=cfg.audio_clips,
    )

    result = trainer.train(resume_from_checkpoint=True)  # the last complete checkpoint, if any

    metrics = {"steps": result.global_step, "train_loss": result.training_loss}
    save_model_output(trainer, saslm, out / "model", metrics, "stage-3")
    return metrics


def main(argv: list[str] | None = None) -> int:
    return recipe_main(UAPOConfig, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
