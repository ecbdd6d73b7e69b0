"""Typed YAML configs: a dataclass is the schema, OmegaConf merges YAML and `key=value` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import SASLMError

T = TypeVar("T")


class ConfigError(SASLMError, ValueError):
    """A config file or override that does not fit the schema."""


@dataclass
class TrainSection:
    """Hugging Face `TrainingArguments` knobs every stage shares."""

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
    deepspeed: str | None = None  # path to a DeepSpeed JSON (configs/deepspeed/zero2.json, zero3.json)
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])


def load_config(schema: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """YAML file + dotted overrides (`train.max_steps=10`) → a validated instance of `schema`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        merged = OmegaConf.merge(
            OmegaConf.structured(schema), OmegaConf.load(path), OmegaConf.from_dotlist(overrides or [])
        )
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def dump_config(cfg, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.structured(cfg), str(path))
