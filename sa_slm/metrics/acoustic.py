"""Per-clip acoustic prosody measures: F0 level and spread, voicing, loudness and speaking rate.

Frames: loudness uses 25 ms rectangular frames every 10 ms; F0 uses Praat's 10 ms pitch frames
(`sa_slm.prosody.pitch_track`, 75–500 Hz first pass). A frame counts as speech when its RMS level is
at least `SILENCE_FLOOR_DBFS` and within `SPEECH_RANGE_DB` of the clip's loudest frame, so the
threshold follows the recording level but never admits digital silence; the speech span runs from the
first to the last speech frame, which trims leading and trailing silence.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..audio import to_mono
from ..errors import AudioError
from ..prosody import PITCH_FLOOR_HZ, pitch_track, semitone_variance
from .failures import failure
from .wer import normalise_text

FRAME_S = 0.025
HOP_S = 0.010
SILENCE_FLOOR_DBFS = -60.0
SPEECH_RANGE_DB = 35.0
MIN_VOICED_FRAMES = 3

PITCH_KEYS = ("f0_mean_hz", "f0_std_hz", "f0_var_st2", "voiced_fraction")
ENERGY_KEYS = ("energy_db_mean", "energy_db_std")
RATE_KEYS = ("speaking_rate_wps",)
ACOUSTIC_KEYS = (*PITCH_KEYS, *ENERGY_KEYS, "duration_s", *RATE_KEYS)

Stats = dict[str, float | None]


def check_waveform(wav: np.ndarray) -> np.ndarray:
    """The clip as a 1-D float64 array; AudioError for an empty or non-finite one (2-D is down-mixed)."""
    wav = to_mono(np.asarray(wav, dtype=np.float64))
    if wav.size == 0:
        raise AudioError("audio is empty (0 samples)")
    if not np.all(np.isfinite(wav)):
        raise AudioError("audio contains NaN or infinite samples")
    return wav


def frame_levels_db(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level in dBFS (0 dB = full-scale square wave) of each 25 ms frame, one every 10 ms."""
    size, hop = round(FRAME_S * sample_rate), round(HOP_S * sample_rate)
    if len(wav) < size:
        raise ValueError(f"clip is {1000 * len(wav) / sample_rate:.0f} ms long, shorter than one "
                         f"{1000 * FRAME_S:.0f} ms frame")
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(wav, dtype=np.float64), size)[::hop]
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def speech_mask(levels_db: np.ndarray) -> np.ndarray:
    """True for frames at least -60 dBFS and within 35 dB of the loudest frame."""
    threshold = max(SILENCE_FLOOR_DBFS, float(levels_db.max()) - SPEECH_RANGE_DB)
    return levels_db >= threshold


def speech_span(wav: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """Start and end (s) of the speech: first speech frame's start to last speech frame's end."""
    idx = np.flatnonzero(speech_mask(frame_levels_db(wav, sample_rate)))
    if idx.size == 0:
        raise ValueError(f"no speech: every frame is below {SILENCE_FLOOR_DBFS:.0f} dBFS")
    return float(idx[0] * HOP_S), float(idx[-1] * HOP_S + FRAME_S)


def pitch_stats(wav: np.ndarray, sample_rate: int) -> Stats:
    """F0 mean and std (Hz), F0 variance (semitones² about the clip mean) and voiced fraction.

    Voiced means Praat found a pitch in the frame (its default voicing threshold 0.45, silence
    threshold 0.03). The F0 keys are None with fewer than 3 voiced frames; `voiced_fraction` is the
    share (0–1) of Praat frames inside the speech span that are voiced, None when there is no speech.
    A clip shorter than Praat's pitch window (3 periods of the 75 Hz floor, 40 ms) raises ValueError.
    """
    window_s = 3 / PITCH_FLOOR_HZ
    if len(wav) < window_s * sample_rate:
        raise ValueError(f"clip is {1000 * len(wav) / sample_rate:.0f} ms long, shorter than the "
                         f"{1000 * window_s:.0f} ms pitch window")
    times, f0 = pitch_track(wav, sample_rate)
    voiced = f0[f0 > 0]
    stats: Stats = dict.fromkeys(PITCH_KEYS)
    if len(voiced) >= MIN_VOICED_FRAMES:
        stats.update(f0_mean_hz=float(voiced.mean()), f0_std_hz=float(voiced.std()),
                     f0_var_st2=semitone_variance(voiced))
    try:
        start, end = speech_span(wav, sample_rate)
    except ValueError:
        return stats
    inside = (times >= start) & (times <= end)
    if inside.any():
        stats["voiced_fraction"] = float(np.mean(f0[inside] > 0))
    return stats


def energy_stats(wav: np.ndarray, sample_rate: int) -> Stats:
    """Mean and standard deviation (dB) of the 25 ms frame RMS levels in dBFS over the speech frames.

    Averaging levels in dB (not power) keeps one loud burst from dominating; the std measures how much
    the loudness moves within the clip.
    """
    levels = frame_levels_db(wav, sample_rate)
    speech = levels[speech_mask(levels)]
    if speech.size == 0:
        raise ValueError(f"no speech: every frame is below {SILENCE_FLOOR_DBFS:.0f} dBFS")
    return {"energy_db_mean": float(speech.mean()), "energy_db_std": float(speech.std())}


def rate_stats(wav: np.ndarray, sample_rate: int, text: str) -> Stats:
    """Words of `text` (after `normalise_text`) per second of the speech span (silence trimmed)."""
    words = len(normalise_text(text).split())
    if words == 0:
        raise ValueError("the text has no words to count")
    start, end = speech_span(wav, sample_rate)
    return {"speaking_rate_wps": words / (end - start)}


_GROUPS: tuple[tuple[str, tuple[str, ...], Callable[[np.ndarray, int, str], Stats]], ...] = (
    ("f0", PITCH_KEYS, lambda wav, sr, text: pitch_stats(wav, sr)),
    ("energy", ENERGY_KEYS, lambda wav, sr, text: energy_stats(wav, sr)),
    ("speaking_rate", RATE_KEYS, rate_stats),
)


def acoustic_metrics(wav: np.ndarray, sample_rate: int, text: str) -> tuple[Stats, list[str]]:
    """All `ACOUSTIC_KEYS` of one clip, plus the reasons of any measure that could not be taken.

    Each measure is independent: one that raises leaves None for its own keys and adds
    `"<measure>: <reason>"` to the returned list. `duration_s` is the whole clip in seconds, None only
    for unusable audio (empty, NaN), which skips every other measure.
    """
    stats: Stats = dict.fromkeys(ACOUSTIC_KEYS)
    try:
        wav = check_waveform(wav)
    except AudioError as exc:
        return stats, [failure("audio", exc)]
    stats["duration_s"] = len(wav) / sample_rate
    errors = []
    for name, keys, measure in _GROUPS:
        try:
            values = measure(wav, sample_rate, text)
            stats.update({k: values[k] for k in keys})
        except Exception as exc:  # noqa: BLE001 - a failed measure leaves None, never ends the batch
            errors.append(failure(name, exc))
    return stats, errors
