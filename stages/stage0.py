"""Stage 0: train a speech tokenizer (audio -> Talker codes) on self-bootstrapped pairs.

    python stages/stage0.py --config configs/stage0_tiny.yaml [key=value ...]
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

from sa_slm import SASLM
from sa_slm.codec import SpeechTokenizer, SpeechTokenizerConfig
from sa_slm.codec.bootstrap import DEFAULT_TEXTS, BootstrapConfig, bootstrap_pairs
from sa_slm.codec.config import Stage0Config
from sa_slm.codec.data import CodePairDataset, SpeechDataset, collate_pairs, split_by_text
from sa_slm.codec.metrics import code_accuracy, round_trip
from sa_slm.codec.trainer import FlowMatchingObjective, SpeechTokenizerTrainer
from sa_slm.audio import load_audio
from sa_slm.data import load_manifest
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.training.config import dump_config
from sa_slm.training.recipe import TORCH_DTYPES, recipe_main
from sa_slm.training.trainer_utils import last_complete_checkpoint, training_arguments



def bootstrap_texts(cfg: Stage0Config) -> list[str]:
    if cfg.bootstrap.texts_file:
        texts = [t.strip() for t in Path(cfg.bootstrap.texts_file).read_text(encoding="utf-8").splitlines()]
        return [t for t in texts if t]
    texts = list(DEFAULT_TEXTS)
    if cfg.real_speech_manifest:
        texts += sorted({ex.reply_text for ex in load_manifest(cfg.real_speech_manifest)} - set(texts))
    return texts


def run(cfg: Stage0Config) -> dict:
    out = Path(cfg.output_dir)
    dump_config(cfg, out / "config.yaml")
    # The frozen base model is built before the TrainingArguments: under ZeRO-3 these switch on
    # partitioned construction (deepspeed.zero.Init) for every model created afterwards.
    saslm = SASLM.from_pretrained(cfg.model, dtype=TORCH_DTYPES[cfg.dtype], seed=cfg.seed)
    args = training_arguments(cfg.train, out / "checkpoints", cfg.seed, prediction_loss_only=True)

    b = cfg.bootstrap
    sampling = SamplingConfig(True, b.temperature, b.top_k, b.top_p, max_new_tokens=b.max_codes)
    with args.main_process_first(desc="bootstrap pairs"):
        pairs = bootstrap_pairs(saslm, out / "bootstrap", BootstrapConfig(
            texts=bootstrap_texts(cfg), speakers=b.speakers, samples_per_text=b.samples_per_text,
            texts_per_batch=b.texts_per_batch, seed=cfg.seed, sampling=sampling))
    examples = load_manifest(pairs, codebook_size=saslm.model.config.token2wav_config.dit_config.num_embeds)
    train_ex, heldout_ex = split_by_text(examples, cfg.heldout_fraction, cfg.seed)

    t = cfg.tokenizer
    tok_cfg = SpeechTokenizerConfig.for_omni(saslm.model.config, hidden_size=t.hidden_size, num_layers=t.num_layers,
                                             num_heads=t.num_heads, dropout=t.dropout, max_codes=t.max_codes)
    torch.manual_seed(cfg.seed)
    tokenizer = SpeechTokenizer(tok_cfg)
    train_set = CodePairDataset(train_ex, tok_cfg.sample_rate)
    heldout_set = CodePairDataset(heldout_ex, tok_cfg.sample_rate) if heldout_ex else None
    flow_matching = None
    if cfg.flow_matching_weight > 0:
        real = load_manifest(cfg.flow_matching_manifest or cfg.real_speech_manifest)
        train_set = torch.utils.data.ConcatDataset([train_set, SpeechDataset(real, tok_cfg.sample_rate)])
        flow_matching = FlowMatchingObjective(saslm.model.token2wav.code2wav_dit_model,
                                              saslm.speakers[cfg.flow_matching_speaker].cond, cfg.flow_matching_weight)
    trainer = SpeechTokenizerTrainer(model=tokenizer, args=args, train_dataset=train_set, eval_dataset=heldout_set,
                                     data_collator=collate_pairs, flow_matching=flow_matching)
    result = trainer.train(resume_from_checkpoint=last_complete_checkpoint(args.output_dir))
    trainer.save_model(str(out / "tokenizer"))

    metrics = {"train_loss": result.training_loss, "steps": result.global_step,
               "train_pairs": len(train_ex), "heldout_pairs": len(heldout_ex)}
    if trainer.is_world_process_zero():
        # Evaluate the saved (gathered) weights on this process alone: a ZeRO-3 engine's partitioned
        # model would wait for the other ranks at every forward.
        unset_hf_deepspeed_config()
        tokenizer = SpeechTokenizer.from_pretrained(out / "tokenizer").to(args.device).eval()
        if heldout_set is not None:
            acc = code_accuracy(tokenizer, heldout_set, [ex.reply_codes for ex in train_ex])
            metrics.update(heldout_code_accuracy=acc.accuracy, chance_accuracy=acc.chance, heldout_codes=acc.codes)
        wavs = [torch.from_numpy(load_audio(ex.reply_audio, tok_cfg.sample_rate)) for ex in heldout_ex[: cfg.round_trip_clips]]
        self_rt = round_trip(tokenizer, saslm, wavs, seed=cfg.seed)
        metrics.update(self_round_trip_code_agreement=self_rt.code_agreement, self_round_trip_mel_l1=self_rt.mel_l1)
        if cfg.real_speech_manifest:
            real = [ex for ex in load_manifest(cfg.real_speech_manifest) if ex.reply_audio][: cfg.round_trip_clips]
            wavs = [torch.from_numpy(load_audio(ex.reply_audio, tok_cfg.sample_rate)) for ex in real]
            real_rt = round_trip(tokenizer, saslm, wavs, seed=cfg.seed)
            metrics.update(real_round_trip_mel_l1=real_rt.mel_l1, real_round_trip_code_agreement=real_rt.code_agreement,
                           real_round_trip_clips=real_rt.clips,
                           real_round_trip_wer=real_rt.wer)  # None until an ASR backend is configured
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))
        print(f"speech tokenizer saved to {out / 'tokenizer'}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    return recipe_main(Stage0Config, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
