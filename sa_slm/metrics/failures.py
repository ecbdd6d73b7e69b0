"""One-line reasons for a measure that failed on a clip, as stored in a clip's `errors`."""

from __future__ import annotations


def failure(measure: str, exc: BaseException) -> str:
    """`"<measure>: <ExceptionType>: <message on one line>"`."""
    return f"{measure}: {type(exc).__name__}: {' '.join(str(exc).split())}"
