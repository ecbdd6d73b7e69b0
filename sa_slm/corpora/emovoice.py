"""EmoVoice-DB: emotional English TTS with free-text emotion descriptions (stage 2).

Download: `huggingface-cli download --repo-type dataset yhaha/EmoVoice-DB --local-dir DIR`.

Layout read (https://huggingface.co/datasets/yhaha/EmoVoice-DB: card and its viewer's schema; the loader
github.com/yanghaha0908/EmoVoice `examples/tts/speech_dataset_tts.py` and `utils/eval_emo_acc.py`):
one JSONL file per split in DIR, one line per utterance,

    {"key": "gpt4o_16375_angry_ash", "source_text": "...", "target_text": "...", "emotion": "angry",
     "emotion_text_prompt": "<free-text description of the delivery>", "target_wav": "<path>.wav",
     "neutral_speaker_wav": "<path>.wav"}          # test split only: a neutral reference of the voice

Split files: `train.jsonl`, `val.jsonl` (also `valid`/`validation`/`dev`), `test.jsonl`; the card
lists Train / Validation / Test; `test.jsonl` is named by the viewer, the other names are not
documented, so any `<split name>*.jsonl` at the top of DIR is taken. `target_wav` is resolved under DIR
as written, then without leading folders, then by file name (the authors' paths carry their prefix;
where the audio lies inside the download is not documented).

Mapping:
- id = `key`; reply_text = `target_text` (else `source_text`); reply_audio = `target_wav`;
- user_text = EmoVoice's own instruction, "Say this sentence with emotion of <description>." (the
  description with its final punctuation dropped, as the EmoVoice loader does), followed on a new line
  by the sentence to say, so the Thinker sees both the delivery instruction and the words of the reply;
  "Say this sentence." when a line has no description;
- labels: `emotion`, `emotion_description` (= emotion_text_prompt), `speaker_id` (the GPT-4o voice,
  the last `_` part of keys shaped `gpt4o_<n>_<emotion>_<voice>`), `source_text` when it differs from
  the reply, `neutral_speaker_wav` as written.
A line without text or audio, or whose audio is not in the download, is skipped with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from .base import SPEAKER_LABEL, CorpusError, Row, SkippedItem, SourceItem, register
from .sources import AudioLocator, json_records

#: file-name stems each split may have; the first registered split is the default
SPLIT_STEMS = {"train": ("train",), "validation": ("val", "valid", "validation", "dev"), "test": ("test",)}
KEY_VOICE = re.compile(r"^gpt4o_\d+_[a-z]+_(?P<voice>[a-z]+)$")


def instruction(description: str | None, text: str) -> str:
    """EmoVoice's TTS instruction for `description` (its loader's template), then the sentence itself."""
    if not description or not description.strip():
        return f"Say this sentence.\n{text}"
    description = re.sub(r"[。！？.,!?]$", "", description.strip())
    return f"Say this sentence with emotion of {description}.\n{text}"


def split_file(src: Path, split: str) -> Path:
    """The JSONL file of `split` at the top of `src` (`<stem>*.jsonl` for the split's stems)."""
    files = sorted(src.glob("*.jsonl"))
    for stem in SPLIT_STEMS[split]:
        exact = [p for p in files if p.stem.lower() == stem]
        loose = [p for p in files if p.stem.lower().startswith(stem)]
        if exact or len(loose) == 1:
            return (exact or loose)[0]
    names = ", ".join(p.name for p in files) or "none"
    raise CorpusError(f"{src}: no JSONL file for split {split!r} (looked for "
                      f"{', '.join(s + '.jsonl' for s in SPLIT_STEMS[split])}; found: {names})")


@register("emovoice", splits=tuple(SPLIT_STEMS), stage="stage 2",
          summary="EmoVoice-DB: emotional TTS with emotion labels and free-text emotion descriptions")
def read(src: Path, split: str = "train") -> Iterator[Row]:
    """The utterances of one EmoVoice-DB split (layout: module doc)."""
    src = Path(src)
    if not src.is_dir():
        raise CorpusError(f"{src}: not a folder; expected the EmoVoice-DB download (train.jsonl, test.jsonl, ...)")
    path = split_file(src, split)
    audio = AudioLocator(src)
    for where, row in json_records(path, path.name):
        if isinstance(row, Exception):
            yield SkippedItem(where, None, f"bad JSON: {row}")
            continue
        if not isinstance(row, dict):
            yield SkippedItem(where, None, f"bad record: expected a JSON object, got {type(row).__name__}")
            continue
        key = row.get("key")
        key = str(key) if key not in (None, "") else where
        text = next((row[k] for k in ("target_text", "source_text") if isinstance(row.get(k), str)
                     and row[k].strip()), None)
        if text is None:
            yield SkippedItem(where, key, "empty text: no 'target_text' or 'source_text'")
            continue
        ref = row.get("target_wav")
        if not isinstance(ref, str) or not ref:
            yield SkippedItem(where, key, "no audio: no 'target_wav' path")
            continue
        wav = audio.find(ref, path.parent)
        if wav is None:
            yield SkippedItem(where, key, f"audio not found: target_wav {ref!r} not under {src}")
            continue
        description = row.get("emotion_text_prompt")
        description = description.strip() if isinstance(description, str) and description.strip() else None
        labels = {"emotion": row.get("emotion"), "emotion_description": description}
        if (m := KEY_VOICE.match(key)) is not None:
            labels[SPEAKER_LABEL] = m["voice"]
        if isinstance(row.get("source_text"), str) and row["source_text"].strip() != text.strip():
            labels["source_text"] = row["source_text"]
        if row.get("neutral_speaker_wav"):
            labels["neutral_speaker_wav"] = row["neutral_speaker_wav"]
        yield SourceItem(id=key, reply_text=text, where=where, reply_audio=wav,
                         user_text=instruction(description, text),
                         labels={k: v for k, v in labels.items() if v is not None})
