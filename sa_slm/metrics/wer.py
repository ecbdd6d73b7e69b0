"""Word error rate of spoken replies against their text, through any `Transcriber`."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

import jiwer
import numpy as np
from tqdm.auto import tqdm

from .failures import isolate_failures

_NON_WORD = re.compile(r"[^\w']+")


def normalise_text(text: str) -> str:
    """Lowercase, drop punctuation (keeping in-word apostrophes) and collapse whitespace.

    WER should count recognised words, not how an ASR backend happens to case or punctuate them:
    "It was quiet, I stayed at home." and "it was quiet i stayed at home" normalise alike.
    """
    text = _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower().replace("_", " "))
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on normalised text (0 = exact, may exceed 1).

    An empty reference scores 0 against an empty hypothesis and 1 against any words; an empty
    hypothesis for a non-empty reference scores 1 (every word deleted).
    """
    ref, hyp = normalise_text(reference), normalise_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp)) if hyp else 1.0


class Transcriber(Protocol):
    """What every ASR backend is: `transcribe(wavs, sample_rate) -> one text per clip`."""

    def __call__(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]: ...


@dataclass
class WERResult:
    """One clip's transcript and WER, or None for both with the reason the recogniser failed."""

    transcript: str | None
    wer: float | None
    error: str | None = None


def transcribe_and_score(
    wavs: list[np.ndarray],
    sample_rate: int,
    references: list[str],
    transcribe: Transcriber,
    batch_size: int = 8,
    progress: bool = False,
) -> list[WERResult]:
    """Transcribe the clips `batch_size` at a time and score each against its reference text.

    The failure policy of `isolate_failures`: a batch the recogniser fails on is retried clip by clip,
    so one bad clip only costs its own result (its `error` says why).
    """
    if len(wavs) != len(references):
        raise ValueError(f"{len(wavs)} clips but {len(references)} reference texts")
    results: list[WERResult] = []
    for start in tqdm(range(0, len(wavs), batch_size), desc="ASR", disable=not progress):
        chunk, refs = wavs[start:start + batch_size], references[start:start + batch_size]
        texts = isolate_failures(lambda clips: transcribe(clips, sample_rate), chunk, "asr")
        for text, error, ref in zip(texts.results, texts.errors, refs):
            results.append(WERResult(None, None, error) if text is None else WERResult(str(text), word_error_rate(ref, str(text))))
    return results
