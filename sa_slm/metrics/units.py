"""Units of every `clip_metrics` key, and which way is better where a direction makes sense, for reports."""

from __future__ import annotations

METRIC_UNITS: dict[str, str] = {
    "f0_mean_hz": "Hz",
    "f0_std_hz": "Hz",
    "f0_var_st2": "semitones²",
    "voiced_fraction": "fraction of speech frames (0–1)",
    "energy_db_mean": "dBFS",
    "energy_db_std": "dB",
    "duration_s": "s",
    "speaking_rate_wps": "words/s",
    "transcript": "text",
    "wer": "errors per reference word (0 = exact)",
    "emo_align": "probability (0–1)",
    "emo_pred": "emotion2vec class",
    "critic_emotion": "rubric score (0–1)",
    "critic_prosody": "rubric score (0–1)",
    "critic_naturalness": "rubric score (0–1)",
    "critic_utility": "weighted rubric mean (0–1)",
}

# Prosody measures describe a style, so they have no better direction; a target style fixes it per clip.
METRIC_BETTER: dict[str, str] = {
    "wer": "lower",
    "emo_align": "higher",
    "critic_utility": "higher",
}
