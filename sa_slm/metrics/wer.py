"""Word error rate of spoken replies against their text, through any `Transcriber`."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import jiwer
import numpy as np
from tqdm.auto import tqdm
from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

from ..paths import resource
from .failures import isolate_failures

# Typographic apostrophes and quotes as ASCII: the normaliser's contraction rules ("'ll" -> " will")
# only know the straight apostrophe, and without this "I’ll" would become the two words "i ll".
_ASCII_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u02bc": "'", "\u2032": "'", "\uff07": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
})
# Spelling variants Whisper's British -> American map lacks, mapped word by word like it: a recogniser
# writes either form of the same spoken words.
EXTRA_SPELLINGS = {"alright": "all right", "ok": "okay"}
_NON_WORD = re.compile(r"[^\w']+")


def ascii_quotes(text: str) -> str:
    """`text` in NFKC form with typographic apostrophes/quotes (’ ‘ ʼ ′ “ ” « » ...) as ' and "."""
    return unicodedata.normalize("NFKC", text).translate(_ASCII_QUOTES)


@cache
def _english_normaliser() -> EnglishTextNormalizer:
    """Whisper's English normaliser with its shipped spelling map (`resources/text_normalisation`)."""
    spellings = json.loads(resource("text_normalisation/english.json").read_text(encoding="utf-8"))
    return EnglishTextNormalizer({**spellings, **EXTRA_SPELLINGS})


def normalise_text(text: str) -> str:
    """The text WER compares: Whisper's English normaliser (the one its published WERs use) after
    typographic quotes become ASCII.

    It lowercases, drops punctuation, bracketed text and fillers (um, uh, hmm), expands contractions
    ("I'll" -> "i will"), writes numbers as digits ("ten" -> "10") and British spellings as American
    ("colour" -> "color"), plus `EXTRA_SPELLINGS` ("alright" -> "all right"). Tokens with no letter or
    digit (a lone "." it keeps for decimals) are dropped. WER should count recognised words, not how
    a recogniser happens to case, punctuate or spell them.
    """
    words = _english_normaliser()(ascii_quotes(text)).split()
    return " ".join(word for word in words if any(c.isalnum() for c in word))


def spoken_words(text: str) -> list[str]:
    """The words of `text` as spoken units, for rates: lowercase, punctuation dropped, a contraction
    ("I’ll", "don't") one word. Not `normalise_text`, whose expansion "i will" would add a word the
    speaker never said; numbers count as written ("25" is one word)."""
    text = _NON_WORD.sub(" ", ascii_quotes(text).lower().replace("_", " "))
    return [word.strip("'") for word in text.split() if word.strip("'")]


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
