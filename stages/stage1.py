"""Stages 1–2: SFT of the Talker and the intent bridge (stage 2 adds the last Thinker layer and text CE).

    python stages/stage1.py --config configs/stage1_tiny.yaml [key=value ...]
    make stage1 CONFIG=configs/stage1_3b.yaml LAUNCH=accelerate NPROC=8

Loss: codec CE + beta(step) * KL(intent posterior || OU prior) [+ text_loss_weight * reply-text CE].
Saves a loadable SA-SLM folder to <output_dir>/model; resumes from the last complete checkpoint.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path


from sa_slm import SASLM
from sa_slm.bridge import IntentBridgeConfig
from sa_slm.data import ExampleDataset, TeacherForcingCollator, load_manifest
from sa_slm.errors import SASLMError
from sa_slm.sft.config import SFTConfig
from sa_slm.sft.lora import add_thinker_lora, merge_thinker_lora
from sa_slm.sft.params import configure_trainable
from sa_slm.sft.trainer import SFTTrainer
from sa_slm.training.config import dump_config
from sa_slm.training.recipe import TORCH_DTYPES, recipe_main, save_model_output
from sa_slm.training.trainer_utils import last_complete_checkpoint, training_arguments





def run(cfg: SFTConfig) -> dict:
    out = Path(cfg.output_dir)
    dump_config(cfg, out / "config.yaml")
    saslm = SASLM.from_pretrained(cfg.model, dtype=TORCH_DTYPES[cfg.dtype], seed=cfg.seed,
                                  bridge=IntentBridgeConfig(**asdict(cfg.bridge)))
    vocab = saslm.model.config.talker_config.vocab_size
    train = load_manifest(cfg.train_manifest, codebook_size=vocab)
    missing = [ex.source for ex in train if not ex.reply_codes]
    if missing:
        raise SASLMError(f"{len(missing)} example(s) have no reply_codes (first: {missing[0]}); "
                         "run `sa-slm tokenize` with a stage-0 tokenizer first")
    evaluation = load_manifest(cfg.eval_manifest, codebook_size=vocab) if cfg.eval_manifest else None
    if cfg.lora.enabled:
        if cfg.train.deepspeed and "zero3" in Path(cfg.train.deepspeed).name:
            raise SASLMError("Thinker LoRA is merged into the weights at the end, which ZeRO-3's partitioned "
                             "weights do not allow; use ZeRO-2 (configs/deepspeed/zero2.json) with lora.enabled")
        add_thinker_lora(saslm.model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules)
    groups = configure_trainable(saslm.model, cfg.train_talker, cfg.train_bridge, cfg.thinker_last_layers)
    args = training_arguments(cfg.train, out / "checkpoints", cfg.seed)
    trainer = SFTTrainer(
        model=saslm.model, args=args, train_dataset=ExampleDataset(train),
        eval_dataset=ExampleDataset(evaluation) if evaluation else None,
        data_collator=TeacherForcingCollator(saslm), param_groups=groups, lr_speech=cfg.lr_speech,
        lr_llm=cfg.lr_llm, beta_max=cfg.beta_max, beta_warmup=cfg.beta_warmup, text_loss_weight=cfg.text_loss_weight,
    )
    result = trainer.train(resume_from_checkpoint=last_complete_checkpoint(args.output_dir))
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
