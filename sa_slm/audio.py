"""Audio I/O and resampling without torchaudio (soundfile + soxr)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError, InputTooLongError

if TYPE_CHECKING:
    import torch

AudioInput = Union[str, Path, np.ndarray, "torch.Tensor"]


def to_mono(wav: np.ndarray) -> np.ndarray:
    """Average channels. Accepts (T,), (T, C) as soundfile returns, or (C, T) with C < T."""
    if wav.ndim == 1:
        return wav
    if wav.ndim != 2:
        raise AudioError(f"audio array must be 1-D or 2-D, got shape {tuple(wav.shape)}")
    channel_axis = 1 if wav.shape[1] <= wav.shape[0] else 0
    return wav.mean(axis=channel_axis)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """High-quality band-limited resampling (soxr)."""
    if orig_sr == target_sr:
        return wav
    return soxr.resample(wav, orig_sr, target_sr).astype(np.float32)


def load_audio(
    audio: AudioInput,
    target_sr: int,
    sampling_rate: int | None = None,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Load a path or array as mono float32 at `target_sr`.

    Arrays need `sampling_rate`. Raises AudioError naming the file for a missing, unreadable,
    empty or over-long input.
    """
    if isinstance(audio, (str, Path)):
        path = Path(audio)
        name = str(path)
        if not path.is_file():
            raise AudioError(f"{name}: audio file not found; check the path (relative paths resolve against the manifest's folder)")
        try:
            wav, sr = sf.read(str(path), dtype="float32", always_2d=False)
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError for corrupt files
            raise AudioError(f"{name}: cannot decode audio ({exc}); re-encode it as WAV/FLAC/OGG") from exc
    else:
        name = "audio array"
        if sampling_rate is None:
            raise AudioError("an audio array needs sampling_rate=...")
        wav = audio.detach().cpu().numpy() if hasattr(audio, "detach") else np.asarray(audio)
        wav, sr = wav.astype(np.float32), int(sampling_rate)
    wav = to_mono(np.asarray(wav, dtype=np.float32))
    if wav.size == 0:
        raise AudioError(f"{name}: audio is empty (0 samples)")
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    check_duration(name, wav.shape[0] / sr, max_seconds)
    return resample(wav, sr, target_sr)


def check_duration(name: str, seconds: float, max_seconds: float | None) -> None:
    """InputTooLongError naming `name` when `seconds` exceeds `max_seconds` (None: no limit)."""
    if max_seconds is not None and seconds > max_seconds:
        raise InputTooLongError(
            f"{name}: audio is {seconds:.1f} s long, the model takes at most {max_seconds:.0f} s; split or trim it"
        )


def trim_silence(wav: np.ndarray, sr: int, rel_db: float = -40.0, pad_s: float = 0.05) -> np.ndarray:
    """(T,) `wav` without its leading and trailing samples more than `rel_db` below its peak, keeping `pad_s`
    seconds of the original on each side. ValueError for a clip with no sample above that (all zeros)."""
    level = np.abs(wav)
    loud = np.flatnonzero(level > level.max(initial=0.0) * 10 ** (rel_db / 20))
    if loud.size == 0:
        raise ValueError("the clip is silent")
    pad = int(pad_s * sr)
    return wav[max(int(loud[0]) - pad, 0):min(int(loud[-1]) + 1 + pad, wav.size)]


def write_wav(path: str | Path, wav: np.ndarray, sr: int) -> Path:
    """Write a mono float waveform as 16-bit PCM WAV, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0), sr, subtype="PCM_16")
    return path
