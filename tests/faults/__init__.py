"""Fault injection: each module here lists `FAULTS`, broken inputs a user will meet in the field.

A fault builds its files under a temporary folder and names the entry point to run in-process
(`sa_slm.cli.main`, a recipe's `main`, ...). `tests/test_faults.py` runs every fault and asserts:

- the exit status (2 for bad input; 0 where a bad item is skipped and the run goes on);
- no traceback, and for exit 2 exactly one `error: ...` line on stderr, matching `message`;
- for exit 0, `message` (when given) is found in stdout + stderr + the log (the skip report);
- `lost(tmp)` returns the good items that did not survive (must be empty).

The closing summary line (faults tried, tracebacks, good items lost) is printed by `test_faults.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

Main = Callable[[list[str]], int]

#: What `tests/test_faults.py` saw in this session (printed by conftest's terminal summary).
TALLY = {"tried": 0, "tracebacks": 0, "lost": 0}


def summary_line() -> str:
    return (f"fault injection: {TALLY['tried']} faults tried, {TALLY['tracebacks']} tracebacks, "
            f"{TALLY['lost']} good items lost")


@dataclass(frozen=True)
class Fault:
    finding: int  # the numbered finding of the field-readiness list (1..9)
    name: str  # short, unique: "stage3: rubric weight is NaN"
    setup: Callable[[Path], tuple[Main, list[str]]]  # tmp folder -> (entry point, argv)
    message: str | None  # regex: the `error:` line (exit 2) or the skip report (exit 0)
    exit_code: int = 2
    lost: Callable[[Path], list[str]] | None = None  # tmp folder -> good items lost (names); [] when none
    slow: bool = False  # trains or generates for more than a few seconds: marked slow


def cli(argv: list[str]) -> int:
    from sa_slm.cli import main

    return main(argv)


def recipe(stage: int) -> Main:
    def main(argv: list[str]) -> int:
        import importlib

        return importlib.import_module(f"sa_slm.recipes.stage{stage}").main(argv)

    return main
