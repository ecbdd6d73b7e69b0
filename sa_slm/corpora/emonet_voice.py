"""EmoNet-Voice (LAION): acted emotional speech with expert emotion-intensity ratings (stage-3 prompts).

Download: `huggingface-cli download --repo-type dataset laion/emonet-voice-bench --local-dir DIR`
(the benchmark, 12,600 clips, ~36 h; EmoNet-Voice Big, >4,500 h, comes from the same LAION collection,
https://huggingface.co/collections/laion/emonet).

Layout read. EmoNet-Voice Bench is HF parquet (split `train`), shards `DIR/data/train-*.parquet`, with
the columns a public preparation script of the benchmark reads (github.com/robflynnyh/SLLM-Understanding
`scripts/prepare_emonet.py`, which downloads the dataset's own parquet files):

    audioId   HF Audio struct {"bytes": <encoded clip>, "path": <file name>}
    label     Python repr of one dict per expert rater:
              "[{'human-1': {'Shame': 1}}, {'human-4': {'Shame': 2}}]"
              every rater scores the clip's one target category (URL-encoded, e.g.
              "Impatience%20and%20Irritability"): 0 not present, 1 mildly, 2 intensely present

Any other scalar column a shard has is carried in the label `source_columns` (a dict, so that no
source column can take the place of a manifest field). The paper (arXiv 2506.09827) describes the
layout of neither EmoNet-Voice Big nor a transcript column; none was found. The spoken text is
therefore taken from a transcript column when a shard has one (`text`, `transcription`, `transcript`
or `sentence`), else from `--option transcripts=FILE`: a JSONL file of {"id": ..., "text": ...} (or a
TSV `id<TAB>text`), the id being the clip's file-name stem (`audioId.path` without its extension), e.g.
written by any ASR over the clips. Without either the source cannot give prompts and CorpusError says so.

Mapping (what stage 3 consumes: `prompts_manifest` lines are dialogue contexts with the `reply_text`
the Talker speaks; UAPO rewards rollouts that deliver it better for the context than a context-free
anchor does):
- id = the clip's file-name stem (shard and row when it has none);
- reply_text = the clip's spoken text (the line an actor voiced to portray the emotion);
- user_text = an instruction naming the emotion, "Say this with <emotion> in your voice.", followed on
  a new line by the text: the context carries the intent the anchor lacks, as the stage-2 EmoVoice
  instructions do. The clip itself is not the user turn: the source has no answer to it, and a prompt
  whose reply repeats the user's words would teach echoing;
- reply_audio = the clip, a human-verified reference rendition of the same text (evaluation, probes);
- labels: `emotion` = the target category, the one emotion the clip was made to portray and the only
  one the experts rated (the source's own annotation rule); `emotion_ratings` = {rater: 0|1|2};
  `emotion_intensity` = their mean (0-2); `emotion_present` = true when most raters heard it (score
  >= 1). Option `min_intensity=1.0` keeps only clips whose mean rating reaches it (the others are
  reported as skipped).
A label cell that does not parse or rates more than one category, a clip without audio bytes or
without text is skipped with its reason.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote

from ..config import read_utf8
from .base import CorpusError, Row, SkippedItem, SourceItem, register
from .sources import json_records, open_parquet, parquet_files, parquet_rows

TEXT_COLUMNS = ("text", "transcription", "transcript", "sentence")
AUDIO_COLUMNS = ("audioId", "audio")


def parse_ratings(cell: Any) -> tuple[str, dict[str, int]]:
    """The `label` cell → (category, {rater: 0|1|2}); ValueError saying what is wrong."""
    if not isinstance(cell, str):
        raise ValueError(f"'label' is {type(cell).__name__}, expected the repr of a list of rater dicts")
    try:
        records = ast.literal_eval(cell)  # never eval: the cell is bytes from a download
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"'label' does not parse ({exc.__class__.__name__}): {cell[:80]!r}") from None
    if not isinstance(records, list) or not records:
        raise ValueError(f"'label' is not a non-empty list of rater dicts: {cell[:80]!r}")
    categories, ratings = set(), {}
    for record in records:
        if not (isinstance(record, dict) and len(record) == 1):
            raise ValueError(f"rater record {record!r} is not {{rater: {{category: score}}}}")
        (rater, scores), = record.items()
        if not (isinstance(scores, dict) and len(scores) == 1):
            raise ValueError(f"rater {rater!r} gives {scores!r}, not {{category: score}}")
        (category, score), = scores.items()
        if score not in (0, 1, 2) or isinstance(score, bool):
            raise ValueError(f"rater {rater!r} score {score!r} is not 0, 1 or 2")
        categories.add(unquote(str(category)).strip())
        ratings[str(rater)] = int(score)
    if len(categories) != 1:
        raise ValueError(f"raters score {len(categories)} categories {sorted(categories)}, expected one")
    return categories.pop(), ratings


def load_transcripts(path: str) -> dict[str, str]:
    """id → text from a JSONL ({"id", "text"}) or TSV (`id<TAB>text`) file; CorpusError naming the line
    that is neither (the file is an option of the run, so a bad line stops it before anything is read)."""
    file = Path(path)
    if not file.is_file():
        raise CorpusError(f"transcripts={path}: file not found")
    out: dict[str, str] = {}
    if file.suffix == ".jsonl":
        for where, obj in json_records(file, str(file)):
            try:
                if isinstance(obj, Exception):
                    raise obj
                key, text = str(obj["id"]), str(obj["text"])
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
                raise CorpusError(f"{where}: expected {{\"id\": ..., \"text\": ...}} ({exc})") from exc
            out[key.strip()] = text.strip()
        return out
    for lineno, line in enumerate(read_utf8(file, CorpusError).splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, text = line.partition("\t")
        if not sep:
            raise CorpusError(f"{file}:{lineno}: expected 'id<TAB>text'")
        out[key.strip()] = text.strip()
    return out


def prompt(emotion: str, text: str) -> str:
    """The user turn of a stage-3 prompt: the emotion to convey, then the words to say."""
    return f"Say this with {emotion.lower()} in your voice.\n{text}"


@register("emonet_voice", splits=("train",), stage="stage 3 prompts", options=("transcripts", "min_intensity"),
          summary="EmoNet-Voice (LAION): emotional clips with expert intensity ratings → stage-3 prompts")
def read(src: Path, split: str = "train", transcripts: str | None = None,
         min_intensity: str | float | None = None) -> Iterator[Row]:
    """Stage-3 prompts from the EmoNet-Voice parquet shards under `src` (layout and mapping: module doc)."""
    src = Path(src)
    try:
        floor = float(min_intensity) if min_intensity is not None else None
    except ValueError:
        raise CorpusError(f"recipe 'emonet_voice': option min_intensity={min_intensity!r} is not a number "
                          "(a mean expert rating, 0 to 2)") from None
    texts = load_transcripts(transcripts) if transcripts else None
    for path in parquet_files(src, split, "EmoNet-Voice"):
        names = open_parquet(path).schema_arrow.names
        audio_col = next((c for c in AUDIO_COLUMNS if c in names), None)
        text_col = next((c for c in TEXT_COLUMNS if c in names), None)
        if audio_col is None or "label" not in names:
            raise CorpusError(f"{path}: expected columns 'audioId' (audio) and 'label' (expert ratings); "
                              f"columns are {names}")
        if text_col is None and texts is None:
            raise CorpusError(f"{path}: no transcript column ({', '.join(TEXT_COLUMNS)}); EmoNet-Voice Bench "
                              "ships audio and ratings only: pass --option transcripts=FILE (JSONL "
                              "{\"id\", \"text\"} or TSV id<TAB>text, id = the clip's file-name stem)")
        for where, row in parquet_rows(path, src, (audio_col, "label")):
            audio = row.get(audio_col)
            name = audio.get("path") if isinstance(audio, dict) else None
            clip_id = Path(name).stem if name else where
            text = row.get(text_col) if text_col else None
            if not (isinstance(text, str) and text.strip()) and texts is not None:
                text = texts.get(clip_id)
            try:
                emotion, ratings = parse_ratings(row.get("label"))
            except ValueError as exc:
                yield SkippedItem(where, clip_id, f"bad rating: {exc}")
                continue
            intensity = sum(ratings.values()) / len(ratings)
            if not isinstance(audio, dict) or not audio.get("bytes"):
                yield SkippedItem(where, clip_id, f"no audio: the '{audio_col}' cell has no bytes")
            elif not isinstance(text, str) or not text.strip():
                missing = [f"the {text_col!r} cell is empty"] if text_col else []
                missing += [f"{transcripts} has no line for {clip_id!r}"] if texts is not None else []
                yield SkippedItem(where, clip_id, "no transcript: " + " and ".join(missing))
            elif floor is not None and intensity < floor:
                yield SkippedItem(where, clip_id, f"below min_intensity: mean expert rating {intensity:.2f} of "
                                  f"{emotion!r} is below min_intensity={floor:g}")
            else:
                extra = {k: v for k, v in row.items() if k not in (audio_col, "label", text_col)
                         and isinstance(v, (str, int, float, bool)) and v != ""}
                labels = {"emotion": emotion, "emotion_ratings": ratings,
                          "emotion_intensity": round(intensity, 4),
                          "emotion_present": sum(s >= 1 for s in ratings.values()) * 2 > len(ratings)}
                if extra:
                    labels["source_columns"] = extra
                yield SourceItem(id=clip_id, reply_text=text.strip(), where=where,
                                 user_text=prompt(emotion, text.strip()),
                                 reply_audio={"bytes": audio["bytes"], "path": name}, labels=labels)
