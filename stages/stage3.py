"""Stage 3: closed-loop self-reward with UAPO (Talker + intent bridge).

    python stages/stage3.py --config configs/stage3_tiny.yaml [key=value ...]
    make stage3 CONFIG=configs/stage3_3b.yaml

Per prompt: K rollouts of the policy and a context-unaware anchor; the rubric critic (the policy
itself unless critic_model is set) scores every rollout, gated by WER; UAPO pushes the policy towards
rollouts that beat the anchor, against a frozen reference. Resumes from the last complete checkpoint.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path


from sa_slm import SASLM
from sa_slm.asr import load_asr
from sa_slm.bridge import IntentBridgeConfig
from sa_slm.critic import RubricCritic
from sa_slm.data import ExampleDataset, load_manifest
from sa_slm.metrics import EmoAlign
from sa_slm.sft.params import configure_trainable
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.training.config import dump_config
from sa_slm.training.recipe import TORCH_DTYPES, recipe_main, save_model_output
from sa_slm.training.trainer_utils import last_complete_checkpoint, training_arguments
from sa_slm.uapo.config import UAPOConfig
from sa_slm.uapo.trainer import UAPOTrainer, collate_prompts, frozen_reference
from sa_slm.uapo.utility import CriticUtility


def run(cfg: UAPOConfig) -> dict:
    out = Path(cfg.output_dir)
    dump_config(cfg, out / "config.yaml")
    bridge = IntentBridgeConfig(**asdict(cfg.bridge)) if cfg.bridge else None
    saslm = SASLM.from_pretrained(cfg.model, dtype=TORCH_DTYPES[cfg.dtype], seed=cfg.seed, bridge=bridge)
    reference = frozen_reference(saslm)
    judge = SASLM.from_pretrained(cfg.critic_model, dtype=TORCH_DTYPES[cfg.dtype]) if cfg.critic_model else reference
    emotion = EmoAlign(cfg.emotion_model) if cfg.emotion_model else None
    utility = CriticUtility(RubricCritic(judge, cfg.rubric), cfg.wer_threshold, load_asr(cfg.asr, judge),
                            f0_variance_weight=cfg.f0_variance_weight, emotion=emotion,
                            emotion_weight=cfg.emotion_reward_weight)
    prompts = load_manifest(cfg.prompts_manifest)
    groups = configure_trainable(saslm.model)
    args = training_arguments(cfg.train, out / "checkpoints", cfg.seed)
    sampling = SamplingConfig(True, cfg.temperature, cfg.top_k, cfg.top_p, max_new_tokens=cfg.max_codes)
    trainer = UAPOTrainer(
        model=saslm.model, args=args, train_dataset=ExampleDataset(prompts), data_collator=collate_prompts,
        saslm=saslm, reference=reference, utility_fn=utility, sampling=sampling, num_rollouts=cfg.num_rollouts,
        beta=cfg.beta, margin_weighting=cfg.margin_weighting, params=groups["speech"], lr=cfg.lr_speech,
        audio_every=cfg.audio_every, audio_clips=cfg.audio_clips, emotion_key=cfg.emotion_key,
    )
    result = trainer.train(resume_from_checkpoint=last_complete_checkpoint(args.output_dir))
    metrics = {"steps": result.global_step, "train_loss": result.training_loss}
    save_model_output(trainer, saslm, out / "model", metrics, "stage-3")
    return metrics


def main(argv: list[str] | None = None) -> int:
    return recipe_main(UAPOConfig, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
