"""Stage 0: train a speech tokenizer (audio -> Talker codes) on self-bootstrapped pairs.

    python -m sa_slm.recipes.stage0 --config configs/stage0_tiny.yaml [key=value ...]
    make stage0 CONFIG=configs/stage0_3b.yaml LAUNCH=accelerate

Steps: (1) the base model synthesises (audio, codes) pairs, cached and resumable; (2) the tokenizer
trains with the Hugging Face Trainer (DeepSpeed from the config), resuming from the last complete
checkpoint; (3) held-out code accuracy and round-trip metrics go to <output_dir>/metrics.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformers.integrations.deepspeed import unset_hf_deepspeed_config

from ..codec import SpeechTokenizer, SpeechTokenizerConfig
from ..codec.bootstrap import DEFAULT_TEXTS, BootstrapConfig, bootstrap_pairs
from ..codec.config import Stage0Config
from ..codec.data import CodePairDataset, SpeechDataset, collate_pairs, split_by_text
from ..codec.metrics import evaluate_tokenizer
from ..codec.trainer import FlowMatchingObjective, SpeechTokenizerTrainer
from ..config import ConfigError, dump_config, read_utf8, torch_dtype
from ..data import audited_manifest, load_manifest
from ..data.manifest import Example
from ..facade import SASLM
from ..presets import model_config
from ..training.trainer_utils import training_arguments
from .common import recipe_main


def bootstrap_texts(cfg: Stage0Config, real: list[Example]) -> list[str]:
    """The texts file's lines, else the built-in sentences + the real-speech manifest's replies."""
    if cfg.bootstrap.texts_file:
        path = Path(cfg.bootstrap.texts_file)
        if not path.is_file():
            raise ConfigError(f"bootstrap.texts_file: {path} not found")
        texts = [t.strip() for t in read_utf8(path).split("\n")]
        return [t for t in texts if t]
    return list(DEFAULT_TEXTS) + sorted({ex.reply_text for ex in real} - set(DEFAULT_TEXTS))


def run(cfg: Stage0Config) -> dict:
    out = Path(cfg.output_dir)
    model_config(cfg.model)  # a missing or empty model folder is reported before the data audit
    # Real speech is audited (decoded once, bad items skipped per on_bad_item, listed in audit*.jsonl);
    # its clips feed the tokenizer's metrics and flow matching, which take any length.
    real = (audited_manifest(cfg.real_speech_manifest, cfg.on_bad_item, out, "audit")
            if cfg.real_speech_manifest else [])
    fm_speech = (audited_manifest(cfg.flow_matching_manifest, cfg.on_bad_item, out, "audit_flow_matching")
                 if cfg.flow_matching_manifest else real)
    texts = bootstrap_texts(cfg, real)
    dump_config(cfg, out / "config.yaml")
    # The frozen base model is built before the TrainingArguments: under ZeRO-3 these switch on
    # partitioned construction (deepspeed.zero.Init) for every model created afterwards.
    saslm = SASLM.from_pretrained(cfg.model, dtype=torch_dtype(cfg.dtype), seed=cfg.seed)
    base = saslm.model
    args = training_arguments(cfg.train, out / "checkpoints", cfg.seed)

    b = cfg.bootstrap
    with args.main_process_first(desc="bootstrap pairs"):
        pairs = bootstrap_pairs(base, saslm.processor, saslm.speakers, out / "bootstrap", BootstrapConfig(
            texts=texts, speakers=b.speakers, num_samples=b.num_samples, texts_per_batch=b.texts_per_batch,
            seed=cfg.seed, sampling=saslm.sampling(b.sampling)))
    examples = load_manifest(pairs, codebook_size=base.config.token2wav_config.dit_config.num_embeds)
    train_ex, heldout_ex = split_by_text(examples, cfg.heldout_fraction, cfg.seed)

    t = cfg.tokenizer
    tok_cfg = SpeechTokenizerConfig.for_omni(base.config, hidden_size=t.hidden_size, num_layers=t.num_layers,
                                             num_heads=t.num_heads, dropout=t.dropout, max_codes=t.max_codes,
                                             mel_norm=t.mel_norm)
    torch.manual_seed(cfg.seed)
    tokenizer = SpeechTokenizer(tok_cfg)
    # Clips longer than the tokenizer's window train on a random window of them (new each epoch).
    parts = [CodePairDataset(train_ex, tok_cfg, cfg.seed)] if cfg.code_loss_weight > 0 else []
    heldout_set = CodePairDataset(heldout_ex, tok_cfg, cfg.seed) if heldout_ex else None
    flow_matching = None
    if cfg.flow_matching_weight > 0:
        parts.append(SpeechDataset(fm_speech, tok_cfg, cfg.seed))
        speaker = saslm.speakers[cfg.flow_matching_speaker]
        flow_matching = FlowMatchingObjective(base.token2wav.code2wav_dit_model, speaker.cond, speaker.ref_mel,
                                              cfg.flow_matching_weight)
    train_set = parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)
    trainer = SpeechTokenizerTrainer(model=tokenizer, args=args, train_dataset=train_set, eval_dataset=heldout_set,
                                     data_collator=collate_pairs, flow_matching=flow_matching,
                                     code_loss_weight=cfg.code_loss_weight)

    result = trainer.train(resume_from_checkpoint=True)  # the last complete checkpoint, if any

    trainer.save_model(str(out / "tokenizer"))
    metrics = {"train_loss": result.training_loss, "steps": result.global_step,
               "train_pairs": len(train_ex), "heldout_pairs": len(heldout_ex)}
    if trainer.is_world_process_zero():
        # Evaluate the saved (gathered) weights on this process alone: a ZeRO-3 engine's partitioned
        # model would wait for the other ranks at every forward.
        unset_hf_deepspeed_config()
        saved = SpeechTokenizer.from_pretrained(out / "tokenizer").to(args.device).eval()
        metrics.update(evaluate_tokenizer(saved, base, saslm.speakers[None], train_ex, heldout_ex, real,
                                          cfg.round_trip_clips, seed=cfg.seed))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))
        print(f"speech tokenizer saved to {out / 'tokenizer'}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    return recipe_main(Stage0Config, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
