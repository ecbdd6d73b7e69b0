"""Per-clip acoustic prosody measures: F0 level and spread, voicing, loudness and speaking rate.

Frames: loudness uses 25 ms rectangular frames every 10 ms; F0 uses Praat's 10 ms pitch frames
(`sa_slm.prosody.pitch_track`, 75–500 Hz first pass). Speech is what the Silero voice-activity
detector (a small neural network shipped inside the `silero-vad` wheel, run on CPU at 16 kHz) calls
speech: `speech_segments` is the one source of it. A loudness frame is speech when its centre lies in
a segment; the speech span runs from the first segment's start to the last one's end, which trims
leading and trailing silence and background noise (a level threshold relative to the loudest frame
took a clip with wind or sea noise at 10 dB SNR for speech from end to end).
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Callable

import numpy as np
import torch

from ..audio import resample, to_mono
from ..errors import AudioError
from ..prosody import PITCH_FLOOR_HZ, pitch_track, semitone_variance
from .failures import failure
from .wer import spoken_words

FRAME_S = 0.025
HOP_S = 0.010
MIN_VOICED_FRAMES = 3
VAD_SAMPLE_RATE = 16_000
VAD_WINDOW = 512  # samples at 16 kHz (32 ms): Silero's fixed analysis window
# Silero's own defaults (speech above probability 0.5, segments of at least 250 ms, pauses of 100 ms
# split them) with no padding added around a segment: the span should be the speech itself.
VAD_OPTIONS = {"threshold": 0.5, "min_speech_duration_ms": 250, "min_silence_duration_ms": 100, "speech_pad_ms": 0}

PITCH_KEYS = ("f0_mean_hz", "f0_std_hz", "f0_var_st2", "voiced_fraction")
ENERGY_KEYS = ("energy_db_mean", "energy_db_std")
RATE_KEYS = ("speaking_rate_wps",)
ACOUSTIC_KEYS = (*PITCH_KEYS, *ENERGY_KEYS, "duration_s", *RATE_KEYS)

Stats = dict[str, float | None]
Segments = list[tuple[float, float]]  # (start, end) in seconds, in time order


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


@cache
def _silero() -> tuple[torch.jit.ScriptModule, Callable[..., list[dict[str, int]]]]:
    """The Silero VAD TorchScript model from the `silero-vad` wheel (loaded once, on CPU, in eval mode) and
    its probabilities-to-segments function.

    Importing `silero_vad` calls `torch.set_num_threads(1)` for the whole process; the thread count is
    put back, or every later forward pass (training, generation, the test suite) would run on one core.
    """
    threads = torch.get_num_threads()
    try:
        from silero_vad import get_speech_timestamps_from_probs, load_silero_vad

        with warnings.catch_warnings():  # its loader's own deprecations (importlib path, torch.jit.load)
            warnings.simplefilter("ignore", DeprecationWarning)
            model = load_silero_vad()
    finally:
        torch.set_num_threads(threads)
    return model, get_speech_timestamps_from_probs


def speech_segments(wav: np.ndarray, sample_rate: int) -> Segments:
    """Speech segments (s) of a clip by the Silero voice-activity detector; [] when it hears none.

    The clip (mono) is resampled to 16 kHz and scored in 32 ms windows, each a speech probability;
    `VAD_OPTIONS` turn them into segments (Silero's `get_speech_timestamps_from_probs`), so times
    have a 32 ms resolution. Deterministic (CPU, recurrent state reset per clip). A clip shorter than
    one window raises ValueError.
    """
    model, to_segments = _silero()
    x = resample(to_mono(np.asarray(wav, dtype=np.float32)), sample_rate, VAD_SAMPLE_RATE)  # (N,) at 16 kHz
    if len(x) < VAD_WINDOW:
        raise ValueError(f"clip is {1000 * len(wav) / sample_rate:.0f} ms long, shorter than the "
                         f"{1000 * VAD_WINDOW // VAD_SAMPLE_RATE} ms voice-activity window")
    with torch.inference_mode():
        probs = model.audio_forward(torch.from_numpy(np.ascontiguousarray(x))[None], VAD_SAMPLE_RATE)[0]
    stamps = to_segments(probs.tolist(), sampling_rate=VAD_SAMPLE_RATE, audio_length_samples=len(x), **VAD_OPTIONS)
    return [(s["start"] / VAD_SAMPLE_RATE, s["end"] / VAD_SAMPLE_RATE) for s in stamps]


def _segments(wav: np.ndarray, sample_rate: int, segments: Segments | None) -> Segments:
    """`segments` when a caller already ran the detector on this clip, else its `speech_segments`."""
    return speech_segments(wav, sample_rate) if segments is None else segments


def speech_mask(levels_db: np.ndarray, segments: Segments) -> np.ndarray:
    """True for the 25 ms loudness frames (one per 10 ms) whose centre lies in a speech segment."""
    centres = np.arange(len(levels_db)) * HOP_S + FRAME_S / 2
    mask = np.zeros(len(levels_db), dtype=bool)
    for start, end in segments:
        mask |= (centres >= start) & (centres < end)
    return mask


def speech_span(wav: np.ndarray, sample_rate: int, segments: Segments | None = None) -> tuple[float, float]:
    """Start and end (s) of the speech: first speech segment's start to last segment's end.

    segments: `speech_segments` of the clip when already computed.
    """
    segments = _segments(wav, sample_rate, segments)
    if not segments:
        raise ValueError("no speech: the voice-activity detector found none")
    return segments[0][0], segments[-1][1]


def pitch_stats(wav: np.ndarray, sample_rate: int, segments: Segments | None = None) -> Stats:
    """F0 mean and std (Hz), F0 variance (semitones² about the clip mean) and voiced fraction.

    Voiced means Praat found a pitch in the frame (its default voicing threshold 0.45, silence
    threshold 0.03). The F0 keys are None with fewer than 3 voiced frames; `voiced_fraction` is the
    share (0–1) of Praat frames inside the speech span that are voiced, None when there is no speech.
    A clip shorter than Praat's pitch window (3 periods of the 75 Hz floor, 40 ms) raises ValueError.
    segments: `speech_segments` of the clip when already computed.
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
        start, end = speech_span(wav, sample_rate, segments)
    except ValueError:
        return stats
    inside = (times >= start) & (times <= end)
    if inside.any():
        stats["voiced_fraction"] = float(np.mean(f0[inside] > 0))
    return stats


def energy_stats(wav: np.ndarray, sample_rate: int, segments: Segments | None = None) -> Stats:
    """Mean and standard deviation (dB) of the 25 ms frame RMS levels in dBFS over the speech frames.

    Averaging levels in dB (not power) keeps one loud burst from dominating; the std measures how much
    the loudness moves within the clip. segments: `speech_segments` of the clip when already computed.
    """
    levels = frame_levels_db(wav, sample_rate)
    speech = levels[speech_mask(levels, _segments(wav, sample_rate, segments))]
    if speech.size == 0:
        raise ValueError("no speech: the voice-activity detector found none")
    return {"energy_db_mean": float(speech.mean()), "energy_db_std": float(speech.std())}


def rate_stats(wav: np.ndarray, sample_rate: int, text: str, segments: Segments | None = None) -> Stats:
    """Spoken words of `text` (`spoken_words`: a contraction is one word) per second of the speech
    span (silence and noise trimmed). segments: `speech_segments` of the clip when already computed."""
    words = len(spoken_words(text))
    if words == 0:
        raise ValueError("the text has no words to count")
    start, end = speech_span(wav, sample_rate, segments)
    return {"speaking_rate_wps": words / (end - start)}


Measure = Callable[[np.ndarray, int, str, "Segments | None"], Stats]
_GROUPS: tuple[tuple[str, tuple[str, ...], Measure], ...] = (
    ("f0", PITCH_KEYS, lambda wav, sr, text, segments: pitch_stats(wav, sr, segments)),
    ("energy", ENERGY_KEYS, lambda wav, sr, text, segments: energy_stats(wav, sr, segments)),
    ("speaking_rate", RATE_KEYS, rate_stats),
)


def acoustic_metrics(wav: np.ndarray, sample_rate: int, text: str) -> tuple[Stats, list[str]]:
    """All `ACOUSTIC_KEYS` of one clip, plus the reasons of any measure that could not be taken.

    Each measure is independent: one that raises leaves None for its own keys and adds
    `"<measure>: <reason>"` to the returned list. `duration_s` is the whole clip in seconds, None only
    for unusable audio (empty, NaN), which skips every other measure. The voice-activity detector runs
    once per clip; every measure uses its segments.
    """
    stats: Stats = dict.fromkeys(ACOUSTIC_KEYS)
    try:
        wav = check_waveform(wav)
    except AudioError as exc:
        return stats, [failure("audio", exc)]
    stats["duration_s"] = len(wav) / sample_rate
    try:
        segments: Segments | None = speech_segments(wav, sample_rate)  # once for every measure
    except ValueError:
        segments = None  # too short: each measure that needs speech raises the reason itself
    errors = []
    for name, keys, measure in _GROUPS:
        try:
            values = measure(wav, sample_rate, text, segments)
            stats.update({k: values[k] for k in keys})
        except Exception as exc:  # noqa: BLE001 - a failed measure leaves None, never ends the batch
            errors.append(failure(name, exc))
    return stats, errors
