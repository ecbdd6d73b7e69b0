"""The per-clip failure policy every measurement of a batch of clips follows (ASR, critic, rewards,
metrics): try the batch; if the batched call fails, retry clip by clip; a clip whose own call fails,
or whose result fails its check, loses only its own value, with a one-line reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def failure(measure: str, exc: BaseException) -> str:
    """`"<measure>: <ExceptionType>: <message on one line>"`."""
    return f"{measure}: {type(exc).__name__}: {' '.join(str(exc).split())}"


@dataclass
class Isolated(Generic[R]):
    """Per-clip results of a batched call: a result or the reason there is none."""

    results: list[R | None]
    errors: list[str | None]  # per clip: None, or why it has no result
    notes: list[str] = field(default_factory=list)  # about the batch (a failed batched call)

    @property
    def reasons(self) -> list[str]:
        """Every note and every clip's error, as `clip <k>: <error>`."""
        return self.notes + [f"clip {k}: {e}" for k, e in enumerate(self.errors) if e]


def isolate_failures(fn: Callable[[list[T]], Sequence[R]], items: list[T], what: str,
                     check: Callable[[R], str | None] | None = None) -> Isolated[R]:
    """`fn(items)` → one result per item, with failures confined to the items that cause them.

    A clip's error is `"<what>: <Type>: <message>"` when its call raised, or the message of
    `check(result)` (None for a usable result, else e.g. "non-finite critic score").
    """
    out: Isolated[R] = Isolated([], [])
    try:
        results = list(fn(items))
        if len(results) != len(items):
            raise RuntimeError(f"returned {len(results)} results for {len(items)} clips")
        out.results, out.errors = results, [None] * len(items)
    except Exception as exc:  # noqa: BLE001 - any failure of the batch: find the clips that cause it
        if len(items) > 1:
            out.notes.append(f"batched {what} pass failed ({failure(what, exc)}); retried clip by clip")
        for item in items:
            try:
                one = list(fn([item]))
                if len(one) != 1:
                    raise RuntimeError(f"returned {len(one)} results for 1 clip")
                out.results.append(one[0])
                out.errors.append(None)
            except Exception as exc_k:  # noqa: BLE001
                out.results.append(None)
                out.errors.append(failure(what, exc_k))
    if check is not None:
        for k, result in enumerate(out.results):
            problem = None if result is None else check(result)
            if problem:
                out.results[k], out.errors[k] = None, problem
    return out
