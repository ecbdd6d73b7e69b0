"""Stages 1–2: SFT of the Talker and the intent bridge (stage 2 adds the last Thinker layer and text CE).

    python -m sa_slm.recipes.stage1 --config configs/stage1_tiny.yaml [key=value ...]
    make stage1 CONFIG=configs/stage1_3b.yaml LAUNCH=accelerate NPROC=8
    make stage2 CONFIG=configs/stage2_3b.yaml          (the same recipe with the stage-2 config)

Loss: codec CE + kl_weight(step) * KL(intent posterior || OU prior) [+ text_loss_weight * reply-text CE].
Saves a loadable SA-SLM folder to <output_dir>/model; resumes from the last complete checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import dump_config, torch_dtype
from ..data import ExampleDataset, TeacherForcingCollator, audited_manifest, user_audio_limits
from ..data.manifest import Example
from ..facade import SASLM
from ..presets import model_config
from ..sft.config import SFTConfig
from ..sft.lora import add_thinker_lora, merge_thinker_lora
from ..sft.trainer import SFTTrainer
from ..training.trainer_utils import training_arguments
from .common import recipe_main, save_model_output


def load_data(cfg: SFTConfig) -> tuple[list[Example], list[Example] | None]:
    """The train (and eval) manifests, audited before the model loads (codes against its codec vocabulary,
    audio decoded and within its length limit; bad items skipped per `on_bad_item`, listed in
    <output_dir>/audit.jsonl and audit_eval.jsonl)."""
    vocab = model_config(cfg.model).talker_config.vocab_size
    rate, max_seconds = user_audio_limits(cfg.model)
    limits = {"codebook_size": vocab, "max_audio_seconds": max_seconds, "sample_rate": rate}
    train = audited_manifest(cfg.train_manifest, cfg.on_bad_item, cfg.output_dir, "audit", require_codes=True, **limits)
    evaluation = (audited_manifest(cfg.eval_manifest, cfg.on_bad_item, cfg.output_dir, "audit_eval", **limits)
                  if cfg.eval_manifest else None)
    return train, evaluation


def run(cfg: SFTConfig) -> dict:
    out = Path(cfg.output_dir)
    train, evaluation = load_data(cfg)
    dump_config(cfg, out / "config.yaml")
    # Loaded before the TrainingArguments: under ZeRO-3 these switch on partitioned construction.
    saslm = SASLM.from_pretrained(cfg.model, dtype=torch_dtype(cfg.dtype), seed=cfg.seed, bridge=cfg.bridge)
    model = saslm.model
    if cfg.lora.enabled:
        add_thinker_lora(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules)
    groups = model.set_trainable(cfg.train_talker, cfg.train_bridge, cfg.thinker_last_layers)

    args = training_arguments(cfg.train, out / "checkpoints", cfg.seed)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=ExampleDataset(train),
        eval_dataset=ExampleDataset(evaluation) if evaluation else None,
        data_collator=TeacherForcingCollator.for_model(model, saslm.processor, saslm.speakers, drop_failures=True),
        param_groups=groups, llm_learning_rate=cfg.llm_learning_rate, kl_weight_max=cfg.kl_weight_max,
        kl_weight_warmup=cfg.kl_weight_warmup, text_loss_weight=cfg.text_loss_weight,
        reply_eos_id=model.reply_eos_id,
    )

    result = trainer.train(resume_from_checkpoint=True)  # the last complete checkpoint, if any

    if cfg.lora.enabled:
        merge_thinker_lora(trainer.accelerator.unwrap_model(trainer.model))
    metrics = {"stage": cfg.stage, "steps": result.global_step, "train_loss": result.training_loss,
               "trainable_speech_params": sum(p.numel() for p in groups["speech"]),
               "trainable_llm_params": sum(p.numel() for p in groups["llm"])}
    save_model_output(trainer, saslm, out / "model", metrics, f"stage-{cfg.stage}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    return recipe_main(SFTConfig, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
