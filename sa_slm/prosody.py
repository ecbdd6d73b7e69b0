"""Objective prosody measures (Praat through praat-parselmouth): F0 statistics of a waveform."""

from __future__ import annotations

import math

import numpy as np

PITCH_FLOOR_HZ = 75.0  # first-pass Praat autocorrelation pitch range; unvoiced frames are excluded
PITCH_CEILING_HZ = 500.0


def _pitch(sound, floor: float, ceiling: float) -> tuple[np.ndarray, np.ndarray]:
    pitch = sound.to_pitch(time_step=0.01, pitch_floor=floor, pitch_ceiling=ceiling)
    return np.asarray(pitch.xs()), pitch.selected_array["frequency"]


def pitch_track(wav: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame centre times (s) and F0 (Hz, 0 where unvoiced) of every 10 ms Praat pitch frame.

    Two passes (Hirst's method): a wide 75–500 Hz search, then one within [0.75 q25, 1.5 q75] of the
    first pass, which removes the octave errors a fixed range makes on low or high voices. Praat raises
    for a clip shorter than its analysis window (3 periods of the pitch floor, 40 ms at 75 Hz).
    """
    import parselmouth

    sound = parselmouth.Sound(np.asarray(wav, dtype=np.float64), sampling_frequency=sample_rate)
    times, f0 = _pitch(sound, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    voiced = f0[f0 > 0]
    if len(voiced) < 3:
        return times, f0
    q25, q75 = np.percentile(voiced, [25, 75])
    return _pitch(sound, max(30.0, 0.75 * q25), min(1000.0, 1.5 * q75))


def f0_contour(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """F0 in Hz of the voiced 10 ms frames of `pitch_track` (unvoiced frames dropped)."""
    f0 = pitch_track(wav, sample_rate)[1]
    return f0[f0 > 0]


def semitone_variance(f0: np.ndarray) -> float:
    """Variance in semitones² of voiced F0 values (Hz) around their mean (0 with fewer than 3 values)."""
    if len(f0) < 3:
        return 0.0
    semitones = 12 * np.log2(f0 / f0.mean())
    return float(semitones.var())


def f0_variance_semitones(wav: np.ndarray, sample_rate: int) -> float:
    """Variance of F0 in semitones² around the clip's mean pitch (0 with fewer than 3 voiced frames)."""
    return semitone_variance(f0_contour(wav, sample_rate))


def f0_variance_reward(wav: np.ndarray, sample_rate: int, scale: float = 4.0) -> float:
    """F0 variance squashed to [0, 1): 1 - exp(-var / scale); scale 4 semitones² (a 2-semitone spread) ≈ 0.63."""
    return 1.0 - math.exp(-f0_variance_semitones(wav, sample_rate) / scale)
