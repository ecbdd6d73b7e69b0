"""What every recipe shares: the command line (`--config FILE key=value ...`, clear errors), one run
per output folder (its run lock) and the final save (model folder + metrics)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..config import load_config
from ..errors import report_errors
from ..training.run_lock import run_lock

T = TypeVar("T")


def recipe_main(schema: type[T], run: Callable[[T], Any], doc: str | None, argv: list[str] | None = None) -> int:
    """Parse `--config FILE key=value ...`, validate the config, take the output folder's run lock, run;
    `error: ...` and exit 2 on bad input or when another live run holds the lock."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="YAML config (a path, or a shipped config's name: stage1_tiny)")
    ap.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=10")
    args = ap.parse_args(argv)

    def locked_run() -> None:
        cfg = load_config(schema, args.config, args.overrides)
        with run_lock(cfg.output_dir):  # one run per output_dir: a second one would interleave checkpoints
            run(cfg)

    return report_errors(locked_run)


def save_model_output(trainer, saslm, folder: Path, metrics: dict, label: str) -> None:
    """Write a loadable SA-SLM folder (weights gathered by the trainer, then tokenizer/speakers/config)
    and `metrics.json` beside it; print both. Every process calls it; only the main one writes assets."""
    trainer.save_model(str(folder))
    if trainer.is_world_process_zero():
        saslm.save_assets(folder)
        (folder.parent / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))
        print(f"{label} model saved to {folder}")
