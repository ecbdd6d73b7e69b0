"""What a dataset recipe is: a reader that turns a local download into `SourceItem`s.

A recipe (`sa_slm/corpora/<name>.py`) only *reads* its source: it walks the download's real layout
(documented in its docstring, with where that layout was read) and yields one `SourceItem` per usable
row, or a `SkippedItem` saying why a row cannot be used. Everything else (decoding and writing the
audio, the manifest, the data card, skip reports) is the shared writer's job (`sa_slm.corpora.writer`),
so every recipe writes the same layout, one set of files per split (several splits can share `<out>`):

    <out>/<split>.jsonl                 one manifest line per item (`sa_slm.data.manifest`)
    <out>/wavs/<split>/reply/, user/    the items' audio as WAV, file names made by `sa_slm.paths.distinct_filenames`
    <out>/<split>.texts.txt             the spoken reply texts, one per line (stage-0 `bootstrap.texts_file`)
    <out>/<split>.skipped.jsonl         every row left out, with its place in the source and the reason
    <out>/<split>.card.md, .card.json, .durations.png   the data card

A skip reason reads `<kind>: <detail>` (e.g. `no transcript: utt1.txt not found`); the data card counts
skips per kind (the text before the first colon).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Union

import numpy as np

from ..errors import SASLMError

#: Audio as a source holds it: a file path, encoded bytes (any format soundfile reads: WAV/FLAC/OGG/MP3),
#: a decoded (samples, sample_rate) pair, or a Hugging Face `Audio` cell ({"bytes": ..., "path": ...},
#: bytes taking precedence, a relative path resolved against `SourceItem.base`).
AudioRef = Union[Path, bytes, tuple[np.ndarray, int], dict]


class CorpusError(SASLMError, ValueError):
    """A source folder a recipe cannot read at all (missing, wrong layout, unknown split or column)."""


@dataclass
class SourceItem:
    """One row of a source, in manifest terms. `reply_*` is the speech the Talker learns to produce (the
    utterance of a TTS corpus, the response of a dialogue corpus); `user_*` is what the user said."""

    id: str  # the source's own id (unique within a split); becomes a file name only through the sanitiser
    reply_text: str
    where: str  # the row's place in the source ("<file>:<line>" or "<file>#<row>"), for reports
    reply_audio: AudioRef | None = None
    user_text: str | None = None
    user_audio: AudioRef | None = None
    history: list[dict[str, str]] = field(default_factory=list)  # [{"role": "user"|"assistant", "text": ...}]
    system_prompt: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)  # every label the source has (emotion, speaker_id, ...)
    base: Path | None = None  # folder that relative audio paths resolve against (default: the source folder)


@dataclass
class SkippedItem:
    """A source row that cannot become an item: where it is, its id if readable, and why."""

    where: str
    id: str | None
    reason: str


Row = Union[SourceItem, SkippedItem]


@dataclass
class Recipe:
    """A registered dataset recipe: `read(src, split, **options)` yields the rows of one split."""

    name: str
    read: Callable[..., Iterator[Row]]
    splits: tuple[str, ...]  # the splits the source has; the first is the default
    summary: str  # one line for `sa-slm data list`
    stage: str  # which stage's input it makes ("stage 1", "stage 2", "stage 3 prompts", "any")
    options: tuple[str, ...] = ()  # extra keyword options the reader takes (e.g. column mapping)
    #: For sources whose splits depend on the download (a Hugging Face DatasetDict): `(src, options) ->
    #: splits`, read cheaply (no rows); may raise CorpusError for a layout it cannot read. None: `splits`.
    find_splits: Callable[[Path, dict[str, Any]], tuple[str, ...]] | None = None

    def splits_of(self, src: Path, options: dict[str, Any]) -> tuple[str, ...]:
        """The splits this download holds (the first is the default)."""
        return self.find_splits(src, options) if self.find_splits is not None else self.splits


RECIPES: dict[str, Recipe] = {}


def register(name: str, splits: tuple[str, ...], summary: str, stage: str, options: tuple[str, ...] = (),
             find_splits: Callable[[Path, dict[str, Any]], tuple[str, ...]] | None = None):
    """Decorator: register a reader function as the recipe `name`."""

    def wrap(fn: Callable[..., Iterator[Row]]) -> Callable[..., Iterator[Row]]:
        if name in RECIPES:
            raise ValueError(f"recipe {name!r} is registered twice")
        RECIPES[name] = Recipe(name, fn, splits, summary, stage, options, find_splits)
        return fn

    return wrap


#: The label that names a source's speaker (the data card counts its distinct values). The manifest's own
#: `speaker` key is a Token2Wav speaker of the model, so a source speaker never goes there: the writer
#: renames a `speaker` label to this key.
SPEAKER_LABEL = "speaker_id"

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def option_flag(recipe: str, name: str, value: Any) -> bool:
    """A yes/no recipe option given as a bool or as text from the command line (true/false, yes/no, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise CorpusError(f"recipe {recipe!r}: option {name}={value!r} is not true/false")


def option_int(recipe: str, name: str, value: Any, low: int = 0) -> int:
    """A whole-number recipe option (>= `low`) given as an int or as text from the command line."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.lstrip("-").isdigit() or int(text) < low:
        raise CorpusError(f"recipe {recipe!r}: option {name}={value!r} must be a whole number >= {low}")
    return int(text)
