"""Expressiveness metrics on waveforms + text (WER, F0, energy, speaking rate, EmoAlign).

`clip_metrics` runs them all over a batch of clips; the modules hold the single measures.
"""

from .acoustic import (
    ACOUSTIC_KEYS, acoustic_metrics, energy_stats, pitch_stats, rate_stats, speech_segments, speech_span,
)
from .clip import PER_WORD_KEYS, ClipMetrics, clip_metrics
from .emotion import EmoAlign, EmotionScore, emotion_agreement, target_class
from .failures import Isolated, isolate_failures
from .units import METRIC_BETTER, METRIC_UNITS
from .wer import Transcriber, WERResult, normalise_text, spoken_words, transcribe_and_score, word_error_rate

__all__ = [
    "ACOUSTIC_KEYS", "METRIC_BETTER", "METRIC_UNITS", "PER_WORD_KEYS", "ClipMetrics", "EmoAlign", "EmotionScore",
    "Isolated", "Transcriber", "WERResult", "acoustic_metrics", "clip_metrics", "emotion_agreement", "energy_stats",
    "isolate_failures", "normalise_text", "pitch_stats", "rate_stats", "speech_segments", "speech_span",
    "spoken_words", "target_class", "transcribe_and_score", "word_error_rate",
]
