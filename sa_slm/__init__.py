"""SA-SLM: expressive Talker training and generation for Qwen2.5-Omni."""

from .errors import AudioError, EmptyReplyError, InputTooLongError, ManifestError, SASLMError, SpeakerError
from .model import GenerationResult, SASLM, SASLMConfig, SpeechRollouts

__all__ = [
    "SASLM", "SASLMConfig", "GenerationResult", "SpeechRollouts",
    "SASLMError", "AudioError", "ManifestError", "SpeakerError", "EmptyReplyError", "InputTooLongError",
]
__version__ = "0.1.0"
