"""The `train:` section every stage config shares: Hugging Face `TrainingArguments` knobs, validated."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from transformers.trainer_utils import SchedulerType

from ..config import ConfigError, check_choice, check_range

SCHEDULERS = tuple(s.value for s in SchedulerType)


@dataclass
class TrainSection:
    """Knobs passed to `TrainingArguments`. `learning_rate` drives the optimizer of every stage (stages
    1–2: the Talker + bridge group; the Thinker group has `llm_learning_rate`)."""

    learning_rate: float = 1e-5
    max_steps: int = -1
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_steps: float = 0.0  # an int: steps; a float in [0, 1): fraction of training
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "cosine"
    bf16: bool = False
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int = 3
    eval_steps: int | None = None
    dataloader_num_workers: int = 0
    activation_checkpointing: bool = False
    deepspeed: str | None = None  # a DeepSpeed JSON, e.g. ${resource:configs/deepspeed/zero2.json}
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])

    def __post_init__(self) -> None:
        check_range("train.learning_rate", self.learning_rate, 0.0, low_open=True)
        check_choice("train.lr_scheduler_type", self.lr_scheduler_type, SCHEDULERS)
        for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                    "logging_steps", "save_steps"):
            check_range(f"train.{key}", getattr(self, key), 1)
        if self.max_steps != -1:
            check_range("train.max_steps", self.max_steps, 1)
        check_range("train.num_train_epochs", self.num_train_epochs, 0.0, low_open=True)
        check_range("train.warmup_steps", self.warmup_steps, 0.0)
        check_range("train.weight_decay", self.weight_decay, 0.0)
        check_range("train.max_grad_norm", self.max_grad_norm, 0.0)
        check_range("train.dataloader_num_workers", self.dataloader_num_workers, 0)
        if self.deepspeed is not None:
            self.deepspeed_stage  # noqa: B018 - reads and checks the JSON now, before any model loads

    @property
    def deepspeed_stage(self) -> int | None:
        """ZeRO stage of the DeepSpeed JSON (from `zero_optimization.stage`), None without DeepSpeed."""
        if self.deepspeed is None:
            return None
        path = Path(self.deepspeed)
        if not path.is_file():
            raise ConfigError(f"train.deepspeed: {path} not found; give a DeepSpeed JSON "
                              "(shipped: ${resource:configs/deepspeed/zero2.json} or zero3.json)")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"train.deepspeed: {path} is not valid JSON ({exc})") from exc
        stage = raw.get("zero_optimization", {}).get("stage", 0) if isinstance(raw, dict) else None
        if not isinstance(stage, int) or stage not in (0, 1, 2, 3):
            raise ConfigError(f"train.deepspeed: {path}: zero_optimization.stage must be 0, 1, 2 or 3, got {stage!r}")
        if "optimizer" in raw:
            raise ConfigError(f"train.deepspeed: {path} has an 'optimizer' section, which would replace the "
                              "per-group learning rates with one; remove it")
        return stage
