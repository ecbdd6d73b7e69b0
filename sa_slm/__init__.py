"""SA-SLM: expressive Talker training and generation for Qwen2.5-Omni.

`from sa_slm import SASLM` is the user-facing facade; the library's layers are described in
README.md ("How the code is organised") and checked by import-linter (pyproject.toml). The facade
and its results are imported lazily, so that importing a component (`sa_slm.metrics`) stays light.
"""

from .errors import AudioError, EmptyReplyError, InputTooLongError, ManifestError, SASLMError, SpeakerError

__all__ = [
    "SASLM", "SASLMConfig", "GenerationResult", "SpeechRollouts",
    "SASLMError", "AudioError", "ManifestError", "SpeakerError", "EmptyReplyError", "InputTooLongError",
]
__version__ = "0.1.0"

_FACADE = {"SASLM", "SASLMConfig", "GenerationResult", "SpeechRollouts"}


def __getattr__(name: str):
    if name in _FACADE:
        from . import facade

        return getattr(facade, name)
    raise AttributeError(f"module 'sa_slm' has no attribute {name!r}")
