"""Stage 0: a speech tokenizer from audio into the Qwen2.5-Omni Talker code space."""

from .encoder import SpeechTokenizer, SpeechTokenizerConfig

__all__ = ["SpeechTokenizer", "SpeechTokenizerConfig"]
