"""Genshin Voice: voice lines of Genshin Impact characters in four languages (stage 2).

Download: `huggingface-cli download --repo-type dataset simon3000/genshin-voice --local-dir DIR`
(about 210 GB; `--include "data/train-0000*"` for a part).

Layout read (https://huggingface.co/datasets/simon3000/genshin-voice/blob/main/README.md, its
`dataset_info`): parquet shards `DIR/data/train-XXXXX-of-YYYYY.parquet` (split `train` only), columns

    audio           HF Audio struct {"bytes": <encoded audio>, "path": <file name>}
    transcription   the spoken line ("" for about 5 % of the rows)
    language        "Chinese", "English(US)", "Japanese", "Korean"
    speaker         the character ("" for about 4 %)
    speaker_type, type, inGameFilename

Mapping:
- id = `<language>_<inGameFilename stem>` (the shard and row when the file name is missing or repeats);
- reply_text = `transcription` with the game's markup tags (`<color=...>`, `</color>`) removed;
  reply_audio = the audio bytes; user_text = the plain TTS instruction of the EmoVoice recipe
  ("Say this sentence." and the line on the next line; the source has no emotion or style text), so the
  two stage-2 corpora share one context format;
- labels: `speaker_id` (character), `language`, `speaker_type`, `type`, `in_game_filename`.
Rows whose transcription is empty, or still holds a game placeholder such as `{NICKNAME}` or
`{M#he}{F#she}` (the recorded audio cannot say it as written), or that have no audio bytes, are
skipped with the reason. Option `language=English(US),Chinese` keeps only those languages (the
paper's stage 2 is English and Chinese); the values are compared without regard to case.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from .base import SPEAKER_LABEL, Row, SkippedItem, SourceItem, register
from .emovoice import instruction
from .sources import parquet_files, parquet_rows

MARKUP = re.compile(r"</?[a-zA-Z][^<>]*>")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


@register("genshin", splits=("train",), stage="stage 2", options=("language",),
          summary="Genshin Voice (HF parquet): character voice lines in Chinese/English/Japanese/Korean")
def read(src: Path, split: str = "train", language: str | None = None) -> Iterator[Row]:
    """The voice lines of the Genshin Voice parquet shards under `src` (layout: module doc)."""
    src = Path(src)
    keep = {v.strip().casefold() for v in language.split(",") if v.strip()} if language else None
    seen: set[str] = set()
    for path in parquet_files(src, split, "Genshin Voice"):
        for where, row in parquet_rows(path, src, ("audio", "transcription", "language")):
            lang = _text(row.get("language"))
            if keep is not None and lang.casefold() not in keep:
                continue  # a filter, not a fault: not reported
            name = _text(row.get("inGameFilename"))
            item_id = f"{lang}_{Path(name).stem}" if name else where
            if item_id in seen:
                item_id = f"{item_id}@{where}"
            seen.add(item_id)
            text = MARKUP.sub("", _text(row.get("transcription"))).strip()
            audio = row.get("audio")
            if not text:
                yield SkippedItem(where, item_id, "empty text: the 'transcription' cell is empty")
            elif PLACEHOLDER.search(text):
                yield SkippedItem(where, item_id, f"game placeholder: the transcription holds "
                                  f"{PLACEHOLDER.search(text).group()}, which the audio cannot say as written")
            elif not isinstance(audio, dict) or not audio.get("bytes"):
                yield SkippedItem(where, item_id, "no audio: the 'audio' cell has no bytes")
            else:
                labels = {SPEAKER_LABEL: _text(row.get("speaker")), "language": lang,
                          "speaker_type": _text(row.get("speaker_type")), "type": _text(row.get("type")),
                          "in_game_filename": name}
                yield SourceItem(id=item_id, reply_text=text, where=where, user_text=instruction(None, text),
                                 reply_audio={"bytes": audio["bytes"], "path": audio.get("path")},
                                 labels={k: v for k, v in labels.items() if v})
