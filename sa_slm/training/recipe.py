"""The command-line shell every stage recipe shares: `--config FILE key=value ...`, clear errors."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, TypeVar

import torch

from ..errors import SASLMError
from .config import load_config

T = TypeVar("T")
#: `dtype:` values of the stage configs
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


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
