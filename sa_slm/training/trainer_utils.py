"""Shared Trainer machinery: arguments from a TrainSection, a resume point that skips torn checkpoints,
loss terms logged across ranks, one optimizer with per-group learning rates."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments
from accelerate.utils import gather_object
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .config import TrainSection

log = logging.getLogger(__name__)


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


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """Newest `checkpoint-N` that finished writing (has trainer_state.json and weights); torn ones are skipped."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    candidates = sorted(
        (p for p in root.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for ckpt in candidates:
        has_weights = any(ckpt.glob("*.safetensors")) or any(ckpt.glob("*.bin")) or any(ckpt.glob("global_step*"))
        if (ckpt / "trainer_state.json").is_file() and has_weights:
            return str(ckpt)
        log.warning("skipping incomplete checkpoint %s (interrupted while saving)", ckpt)
    return None


def merge_term_windows(windows: list[dict[str, tuple[float, int]]]) -> dict[str, float]:
    """Per-rank {term: (sum, count)} → {term: mean over every value of every rank}."""
    totals: dict[str, list[float]] = {}
    for window in windows:
        for name, (total, count) in window.items():
            acc = totals.setdefault(name, [0.0, 0])
            acc[0] += total
            acc[1] += count
    return {name: total / count for name, (total, count) in totals.items() if count}


class LoggedTermsTrainer(Trainer):
    """A Trainer that averages named loss terms over each logging window, across all ranks, and logs
    them with the loss (every rank calls `log` together, so the window is gathered there)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._terms: dict[str, list[float]] = defaultdict(list)

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
        super().log(logs, *args, **kwargs)


def grouped_optimizer(args: TrainingArguments, model, groups: list[tuple[list[torch.nn.Parameter], float]]):
    """The optimizer the Trainer would build, with one parameter group per (params, learning rate)."""
    optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    kwargs.pop("lr", None)
    return optimizer_cls([{"params": ps, "lr": lr, "weight_decay": args.weight_decay} for ps, lr in groups if ps],
                         **kwargs)
