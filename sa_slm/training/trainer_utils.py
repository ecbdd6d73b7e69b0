"""Shared Trainer machinery: arguments from a TrainSection, loss terms logged across ranks, resume that
loads every trainable weight and keeps the run's mean loss across restarts, one optimizer with per-group
learning rates."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch
from accelerate.utils import gather_object
from transformers import Trainer, TrainingArguments
from transformers.trainer_pt_utils import nested_gather
from transformers.trainer_utils import TrainOutput
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from .checkpoints import TRAINER_STATE, last_complete_checkpoint, load_checkpoint_weights
from .config import TrainSection

log = logging.getLogger(__name__)

RUN_LOSS = "RunLoss"  # entry of trainer_state.json `stateful_callbacks`: {"loss_sum": float, "steps": int}


def training_arguments(train: TrainSection, output_dir: str | Path, seed: int, **extra) -> TrainingArguments:
    """One place that maps our config onto `TrainingArguments` (CPU runs set use_cpu).

    TensorBoard logs go to `<output_dir>/runs/` (or `$TENSORBOARD_LOGGING_DIR`).
    """
    fields = asdict(train)
    eval_steps = fields.pop("eval_steps")
    return TrainingArguments(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        disable_tqdm=False,
        **fields,
        **extra,
    )


def merge_term_windows(windows: list[dict[str, tuple[float, int]]]) -> dict[str, float]:
    """Per-rank {term: (sum, count)} → {term: mean over every value of every rank}."""
    totals: dict[str, list[float]] = {}
    for window in windows:
        for name, (total, count) in window.items():
            acc = totals.setdefault(name, [0.0, 0])
            acc[0] += total
            acc[1] += count
    return {name: total / count for name, (total, count) in totals.items() if count}


def resumed_loss_tally(ckpt: str | Path) -> tuple[float, int] | None:
    """(sum of per-step losses, steps) of the run up to checkpoint `ckpt`; None when the checkpoint has no
    tally (written by an older version)."""
    state = json.loads((Path(ckpt) / TRAINER_STATE).read_text(encoding="utf-8"))
    tally = (state.get("stateful_callbacks") or {}).get(RUN_LOSS)
    if not tally or tally.get("steps") != state["global_step"]:
        return None
    return float(tally["loss_sum"]), int(tally["steps"])


class LoggedTermsTrainer(Trainer):
    """The Trainer every stage uses. On top of Hugging Face's:

    - named loss terms, averaged over each logging window across all ranks, are logged with the loss
      (every rank calls `log` together, so the window is gathered there);
    - resuming loads the checkpoint's weights under the model's own names and fails when a trainable
      parameter would stay unloaded (`checkpoints.load_checkpoint_weights`);
    - `train_loss` (the returned TrainOutput, the final log) is the mean per-step loss of the whole run,
      across resumes: each checkpoint carries the running sum in trainer_state.json (`RunLoss`).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._terms: dict[str, list[float]] = defaultdict(list)
        self._loss_before: tuple[float, int] | None = (0.0, 0)  # the run's (loss sum, steps) before this train()

    def record(self, model, **terms) -> None:
        """Remember scalar terms of a training step (ignored in evaluation)."""
        if model.training:
            for name, value in terms.items():
                self._terms[name].append(float(value.detach() if torch.is_tensor(value) else value))

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs:
            window = {name: (sum(values), len(values)) for name, values in self._terms.items() if values}
            windows = gather_object([window]) if self.args.world_size > 1 else [window]
            logs.update(merge_term_windows(windows))
            self._terms.clear()
        if "train_loss" in logs and self._run_training_loss() is not None:
            logs["train_loss"] = self._run_training_loss()
        super().log(logs, *args, **kwargs)

    # ---- resume --------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs) -> TrainOutput:
        """`resume_from_checkpoint=True` means the last complete checkpoint of `args.output_dir` (none: a
        fresh start)."""
        if isinstance(resume_from_checkpoint, bool):
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir) if resume_from_checkpoint else None
        self._loss_before = (0.0, 0)
        if resume_from_checkpoint is not None:
            self._loss_before = resumed_loss_tally(resume_from_checkpoint)
            if self._loss_before is None:
                log.warning("%s has no run-loss tally (written by an older version): train_loss will cover the "
                            "resumed steps only", resume_from_checkpoint)
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        ckpt = Path(resume_from_checkpoint)
        full_weights = (ckpt / SAFE_WEIGHTS_NAME).is_file() or (ckpt / SAFE_WEIGHTS_INDEX_NAME).is_file()
        if self.is_fsdp_enabled or not full_weights:  # FSDP shards, PEFT adapters: the Trainer's own loaders
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            return
        load_checkpoint_weights(model if model is not None else self.model, ckpt)

    # ---- run-level loss ------------------------------------------------------------------------
    def _run_training_loss(self) -> float | None:
        """Mean per-step loss over every step of the run so far, across resumes (None: unknown before)."""
        if self._loss_before is None or not self.state.global_step:
            return None
        return (self._loss_before[0] + self._total_loss_scalar) / self.state.global_step

    def _save_checkpoint(self, model, trial) -> None:
        if self._loss_before is not None:
            # Every rank is here (checkpoints are collective): the window not yet logged is gathered as `log` does.
            unlogged = nested_gather(self._tr_loss, self.args.parallel_mode).mean().item()
            self.state.stateful_callbacks[RUN_LOSS] = {
                "loss_sum": self._loss_before[0] + self._total_loss_scalar + unlogged,
                "steps": self.state.global_step}
        super()._save_checkpoint(model, trial)

    def _finalize_training(self, trial, num_train_samples, start_time) -> TrainOutput:
        out = super()._finalize_training(trial, num_train_samples, start_time)
        loss = self._run_training_loss()
        if loss is None:
            return out
        out.metrics["train_loss"] = loss
        return TrainOutput(out.global_step, loss, out.metrics)


def grouped_optimizer(args: TrainingArguments, model, groups: list[tuple[list[torch.nn.Parameter], float]]):
    """The optimizer the Trainer would build, with one parameter group per (params, learning rate)."""
    optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    kwargs.pop("lr", None)
    return optimizer_cls([{"params": ps, "lr": lr, "weight_decay": args.weight_decay} for ps, lr in groups if ps],
                         **kwargs)
