"""The command-line shell every stage recipe shares: `--config FILE key=value ...`, clear errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from ..errors import SASLMError
from .config import load_config

T = TypeVar("T")
#: `dtype:` values of the stage configs
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # config/CLI names


def report_errors(fn: Callable[[], Any]) -> int:
    """Run `fn`; a SASLMError (bad input, bad config) becomes `error: ...` on stderr and exit code 2."""
    try:
        fn()
    except SASLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def recipe_main(schema: type[T], run: Callable[[T], Any], doc: str | None, argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="YAML config (see configs/)")
    ap.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=10")
    args = ap.parse_args(argv)
    return report_errors(lambda: run(load_config(schema, args.config, args.overrides)))


def save_model_output(trainer, saslm, folder: Path, metrics: dict, label: str) -> None:
    """Write a loadable SA-SLM folder (weights gathered by the trainer, then tokenizer/speakers/config)
    and `metrics.json` beside it; print both. Every process calls it; only the main one writes assets."""
    trainer.save_model(str(folder))
    if trainer.is_world_process_zero():
        saslm.save_assets(folder)
        (folder.parent / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))
        print(f"{label} model saved to {folder}")
