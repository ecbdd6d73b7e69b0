"""Exceptions raised on bad user input. Each message names the file, line or value at fault and what to do."""


class SASLMError(Exception):
    """Base class for every error the toolkit raises on purpose."""


class AudioError(SASLMError, ValueError):
    """An audio file or array that cannot be used (missing, unreadable, empty, too long)."""


class ManifestError(SASLMError, ValueError):
    """A manifest line that fails validation; the message starts with `file:line:`."""


class SpeakerError(SASLMError, KeyError):
    """A speaker name the model does not know."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class EmptyReplyError(SASLMError, ValueError):
    """The Thinker produced (or was given) a reply with no tokens, so there is nothing to speak."""


class InputTooLongError(SASLMError, ValueError):
    """An input longer than the model can take (audio seconds, prompt tokens or codec steps)."""


class OutputError(SASLMError, OSError):
    """An output file that could not be written; the message names it and where its data went instead."""


def report_errors(fn) -> int:
    """Run `fn()` and return its exit status (it returns None for 0, or an int, e.g. 1 for work done
    with some items failed); a SASLMError (bad input, bad config) becomes one `error: ...` line on stderr
    and exit code 2 (what every command-line entry point returns)."""
    import sys

    try:
        status = fn()
    except SASLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if status is None else status
