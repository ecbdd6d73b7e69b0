"""Generic recipes: any Hugging Face dataset on disk (`hf`), a folder of audio + transcript files (`folder`),
and a CSV/TSV metadata table (`table`: LJSpeech, LibriTTS or a headed table such as Common Voice's).

Each reader only walks its layout and yields `SourceItem`s / `SkippedItem`s; the shared writer decodes and
writes the audio, the manifest and the data card. A source column or file that names the speaker becomes
the `speaker_id` label; every other column the source has is kept as a label.
"""

from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..config import did_you_mean, read_utf8
from .base import SPEAKER_LABEL, CorpusError, Row, SkippedItem, SourceItem, option_int, register
from .sources import AUDIO_SUFFIXES, files_under, parquet_splits

#: Column-mapping targets that are `SourceItem` fields (`text` and `audio` are the reply's); any other
#: target names a label (e.g. `speaker_id=client_id` keeps the column `client_id` as the label `speaker_id`).
FIELD_ALIASES = {"id": "id", "text": "reply_text", "reply_text": "reply_text", "audio": "reply_audio",
                 "reply_audio": "reply_audio", "user_text": "user_text", "user_audio": "user_audio",
                 "system_prompt": "system_prompt"}
SOURCE_FIELDS = set(FIELD_ALIASES.values())
#: Column names looked for, in order, when a field is not mapped (the common names on the Hugging Face hub,
#: in Common Voice's TSVs and in LibriTTS/LJSpeech conversions).
DEFAULT_COLUMNS = {
    "id": ("id", "utt_id", "audio_id", "segment_id", "key"),
    "reply_text": ("text", "sentence", "transcription", "transcript", "normalized_text", "transcription_normalised",
                   "normalized_transcription"),
    "reply_audio": ("audio", "path", "file", "file_name", "filename", "audio_path", "audio_filepath", "wav"),
}


def column_map(recipe: str, value: Any) -> dict[str, str]:
    """`columns` as given: a dict {target: source column}, or `target=column` pairs separated by commas."""
    if value is None:
        return {}
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        pairs = []
        for part in str(value).split(","):
            target, sep, column = part.partition("=")
            if not sep:
                raise CorpusError(f"recipe {recipe!r}: column mapping {part!r} is not field=column "
                                  "(e.g. text=sentence)")
            pairs.append((target, column))
    out: dict[str, str] = {}
    for target, column in pairs:
        target, column = str(target).strip(), str(column).strip()
        if not target or not column:
            raise CorpusError(f"recipe {recipe!r}: column mapping {target}={column} needs a field and a column")
        out[FIELD_ALIASES.get(target, target)] = column
    return out


def _split_list(value: Any) -> set[str]:
    if value is None:
        return set()
    items = value if isinstance(value, (list, tuple, set)) else str(value).split(",")
    return {str(v).strip() for v in items if str(v).strip()}


def _resolve_columns(recipe: str, where: str, present: list[str], columns: dict[str, str],
                     required: tuple[str, ...]) -> dict[str, str]:
    """{field or label: column} for a table with `present` columns: the mapping given (each column must
    exist) plus, for `id`/`reply_text`/`reply_audio` left unmapped, the first default name present."""
    for target, column in columns.items():
        if column not in present:
            raise CorpusError(f"{where}: no column {column!r} (mapped to {target!r}); columns: "
                              f"{', '.join(present)}{did_you_mean(column, present)}")
    out = dict(columns)
    for target, names in DEFAULT_COLUMNS.items():
        if target not in out:
            found = next((n for n in names if n in present), None)
            if found is not None:
                out[target] = found
    for target in required:
        if target not in out:
            shown = "text" if target == "reply_text" else "audio" if target == "reply_audio" else target
            raise CorpusError(f"{where}: no {shown} column found (looked for {', '.join(DEFAULT_COLUMNS[target])}); "
                              f"columns: {', '.join(present)}; map one with --column {shown}=<column>")
    return out


def _item_from_row(row: dict[str, Any], fields: dict[str, str], exclude: set[str], *, fallback_id: str, where: str,
                   base: Path | None, skip_columns: set[str] = frozenset()) -> SourceItem:
    """A SourceItem from one table row: mapped fields, mapped labels, and every other column as a label."""
    used = set(fields.values())
    values = {target: row.get(column) for target, column in fields.items()}
    labels = {target: values[target] for target in fields if target not in SOURCE_FIELDS}
    labels.update({k: v for k, v in row.items() if k not in used and k not in exclude and k not in skip_columns})
    raw_id = values.get("id")
    text = values.get("reply_text")
    user_text = values.get("user_text")
    return SourceItem(
        id=str(raw_id) if raw_id not in (None, "") else fallback_id,
        reply_text=text if isinstance(text, str) else "",
        where=where,
        reply_audio=values.get("reply_audio") or None,
        user_text=user_text if isinstance(user_text, str) and user_text.strip() else None,
        user_audio=values.get("user_audio") or None,
        system_prompt=values.get("system_prompt") or None,
        labels=labels,
        base=base,
    )


# ---------------------------------------------------------------- hf: a Hugging Face dataset on disk

@contextmanager
def _hub_offline(config: Any) -> Iterator[None]:
    """`datasets` in offline mode while a local dataset is opened (HF_DATASETS_OFFLINE=1 for this call
    only: a local folder never makes it ask the hub)."""
    before = config.HF_HUB_OFFLINE
    config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        config.HF_HUB_OFFLINE = before


def _hf_layout(src: Path) -> str:
    if (src / "dataset_dict.json").is_file():
        return "dataset_dict"
    if (src / "state.json").is_file() and (src / "dataset_info.json").is_file():
        return "dataset"
    if next(src.rglob("*.parquet"), None) is not None:
        return "parquet"
    raise CorpusError(f"{src}: not a Hugging Face dataset on disk: no dataset_dict.json or state.json "
                      "(a `save_to_disk` folder) and no *.parquet files")


def hf_splits(src: Path, options: dict[str, Any]) -> tuple[str, ...]:
    """The splits of a `save_to_disk` folder (its dataset_dict.json) or of parquet files (their names)."""
    layout = _hf_layout(src)
    if layout == "dataset_dict":
        splits = json.loads(read_utf8(src / "dataset_dict.json", CorpusError)).get("splits")
        if not isinstance(splits, list) or not splits or not all(isinstance(s, str) for s in splits):
            raise CorpusError(f"{src / 'dataset_dict.json'}: 'splits' must be a non-empty list of names")
        for split in splits:  # each split is a folder of `src`; a name such as "../x" would read elsewhere
            if split in ("", ".", "..") or "/" in split or "\\" in split or not (src / split).is_dir():
                raise CorpusError(f"{src / 'dataset_dict.json'}: split {split!r} is not a folder in {src}")
        return tuple(splits)
    if layout == "dataset":
        return ("train",)
    splits = tuple(parquet_splits(src))
    if not splits:
        raise CorpusError(f"{src}: no parquet file matches a split name")
    return splits


@register("hf", splits=("train",), stage="any", options=("columns", "exclude"), find_splits=hf_splits,
          summary="a Hugging Face dataset on disk (save_to_disk folder or parquet files), with a column mapping")
def read_hf(src: Path, split: str, columns: Any = None, exclude: Any = None) -> Iterator[Row]:
    """Rows of a Hugging Face `datasets` dataset on disk, read offline.

    Layouts (as `datasets` writes and the hub serves them, https://huggingface.co/docs/datasets):
    - a `Dataset.save_to_disk` / `DatasetDict.save_to_disk` folder: `dataset_dict.json` listing the
      splits, one folder per split with `data-*.arrow`, `dataset_info.json`, `state.json` (read with
      `datasets.load_from_disk`); a single `Dataset` folder is the split `train`;
    - parquet files, e.g. a hub snapshot `data/<split>-00000-of-00003.parquet` (read with
      `datasets.load_dataset("parquet", data_files=..., streaming=True)`: rows stream from the files,
      nothing is copied into the cache).
    An `Audio` column holds {"bytes": ..., "path": ...} cells; it is cast to `Audio(decode=False)`, so
    no torchcodec is needed (the writer decodes the bytes with soundfile; a cell with only a `path` is
    read relative to `src`).

    `columns` maps fields to columns ({"text": "sentence", "audio": "audio", "speaker_id": "client_id"},
    or "text=sentence,speaker_id=client_id"); fields are id, text (reply), audio (reply), user_text,
    user_audio, system_prompt, and any other name renames a label. Unmapped id/text/audio are looked
    for under common names (`DEFAULT_COLUMNS`); with no id column the id is `<split>-<row>`. Every other
    column becomes a label, except those listed in `exclude` and binary/`Audio` columns.
    """
    import datasets

    mapping, dropped = column_map("hf", columns), _split_list(exclude)
    layout = _hf_layout(src)
    with _hub_offline(datasets.config):
        if layout == "parquet":
            files = [str(f) for f in parquet_splits(src)[split]]
            ds = datasets.load_dataset("parquet", data_files={split: files}, split=split, streaming=True)
        else:
            ds = datasets.load_from_disk(str(src / split if layout == "dataset_dict" else src))
    features = ds.features or {}
    present = list(features) if features else list(ds.column_names or [])
    fields = _resolve_columns("hf", f"{src} ({split})", present, mapping, required=("reply_text",))
    audio_columns = {name for name, feature in features.items() if isinstance(feature, datasets.Audio)}
    binary = {name for name, feature in features.items()
              if isinstance(feature, datasets.Value) and feature.dtype in ("binary", "large_binary")}
    for name in audio_columns:
        ds = ds.cast_column(name, datasets.Audio(decode=False))  # cells stay {"bytes", "path"}
    skip = (audio_columns | binary) - set(fields.values())
    for index, row in enumerate(ds):
        yield _item_from_row(row, fields, dropped, fallback_id=f"{split}-{index}", where=f"{split}#{index}",
                             base=src, skip_columns=skip)


# ---------------------------------------------------------------- folder: audio files + transcripts

def _text_file(path: Path) -> str:
    """A transcript file's text on one line (line breaks become spaces)."""
    return " ".join(read_utf8(path, CorpusError).split())


def _librispeech_transcripts(folder: Path) -> dict[str, tuple[str, str]]:
    """{utterance id: (text, where)} from a folder's `*.trans.txt` (LibriSpeech: `<id> <TEXT>` per line)."""
    out: dict[str, tuple[str, str]] = {}
    for trans in sorted(folder.glob("*.trans.txt")):
        for lineno, line in enumerate(read_utf8(trans, CorpusError).split("\n"), start=1):
            utt, _, text = line.strip().partition(" ")
            if utt:
                out.setdefault(utt, (text.strip(), f"{trans}:{lineno}"))
    return out


@register("folder", splits=("train",), stage="any", options=("speaker_folder", "extensions"),
          summary="a folder of audio files, each with a transcript beside it (.txt/.lab, LibriTTS, LibriSpeech)")
def read_folder(src: Path, split: str, speaker_folder: Any = 0, extensions: Any = None) -> Iterator[Row]:
    """Every audio file under `src` (recursively, in sorted order) with its transcript beside it.

    Transcripts, first found wins:
    - `<stem>.txt` or `<stem>.lab` (the Montreal Forced Aligner corpus format,
      https://montreal-forced-aligner.readthedocs.io/en/latest/user_guide/corpus_structure.html);
    - `<stem>.normalized.txt` (LibriTTS, https://www.openslr.org/60/; its `<stem>.original.txt`, when
      present, is kept as the label `original_text`);
    - a line `<stem> <TEXT>` of a `*.trans.txt` in the same folder (LibriSpeech, https://www.openslr.org/12/).
    An audio file without one is skipped. The id is the file's path under `src` without its suffix.
    `speaker_folder=N` takes the speaker (label `speaker_id`) from the N-th folder above the file
    (1: the parent, as in MFA corpora; 2: LibriSpeech/LibriTTS `<speaker>/<chapter>/`); 0: none.
    `extensions`: the audio suffixes to pick up (default .wav,.flac,.ogg,.mp3).
    """
    depth = option_int("folder", "speaker_folder", speaker_folder)
    suffixes = tuple(sorted({s if s.startswith(".") else f".{s}" for s in map(str.lower, _split_list(extensions))})) \
        if extensions else AUDIO_SUFFIXES
    audio_files = files_under(src, suffixes)
    if not audio_files:
        raise CorpusError(f"{src}: no audio files ({', '.join(suffixes)}) under this folder")
    trans_cache: dict[Path, dict[str, tuple[str, str]]] = {}
    for audio in audio_files:
        rel = audio.relative_to(src)
        item_id = rel.with_suffix("").as_posix()
        stem = audio.with_suffix("")
        labels: dict[str, Any] = {}
        if depth:
            parents = rel.parents  # rel.parents[-1] is "."
            if depth >= len(parents):
                yield SkippedItem(str(rel), item_id, f"no speaker folder: {rel} lies fewer than {depth} folders "
                                                     "below the source folder (speaker_folder)")
                continue
            labels[SPEAKER_LABEL] = parents[depth - 1].name
        try:
            text, where = _folder_transcript(audio, stem, labels, trans_cache)
        except CorpusError as exc:  # a transcript that is not UTF-8: this row only
            yield SkippedItem(str(rel), item_id, f"unreadable transcript: {exc}")
            continue
        if text is None:
            yield SkippedItem(str(rel), item_id, f"no transcript: none of {stem.name}.txt, .lab, .normalized.txt "
                                                 "or a *.trans.txt line beside the audio")
            continue
        yield SourceItem(id=item_id, reply_text=text, where=where, reply_audio=rel, labels=labels, base=src)


def _folder_transcript(audio: Path, stem: Path, labels: dict[str, Any],
                       trans_cache: dict[Path, dict[str, tuple[str, str]]]) -> tuple[str | None, str]:
    """(text, where) of one audio file's transcript, filling `labels` (original_text); (None, "") if none."""
    for suffix in (".txt", ".lab"):
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return _text_file(candidate), str(candidate)
    normalized = stem.with_name(stem.name + ".normalized.txt")
    if normalized.is_file():
        original = stem.with_name(stem.name + ".original.txt")
        if original.is_file():
            labels["original_text"] = _text_file(original)
        return _text_file(normalized), str(normalized)
    if audio.parent not in trans_cache:
        trans_cache[audio.parent] = _librispeech_transcripts(audio.parent)
    found = trans_cache[audio.parent].get(stem.name)
    return found if found is not None else (None, "")


# ---------------------------------------------------------------- table: CSV/TSV metadata

TABLE_LAYOUTS = ("ljspeech", "libritts", "header")
QUOTING = {"none": csv.QUOTE_NONE, "minimal": csv.QUOTE_MINIMAL}


def _read_table(recipe: str, path: Path, delimiter: str, quoting: int) -> list[list[str]]:
    text = read_utf8(path, CorpusError)
    return list(csv.reader(text.split("\n"), delimiter=delimiter, quoting=quoting, strict=False))


def _table_layout(src: Path, layout: Any, metadata: Any) -> str:
    if layout is not None:
        if str(layout) not in TABLE_LAYOUTS:
            raise CorpusError(f"recipe 'table': layout={layout!r} is not one of {', '.join(TABLE_LAYOUTS)}"
                              f"{did_you_mean(str(layout), TABLE_LAYOUTS)}")
        return str(layout)
    if metadata is not None:
        return "ljspeech" if Path(str(metadata)).name == "metadata.csv" else "header"
    if (src / "metadata.csv").is_file():
        return "ljspeech"
    if next(src.rglob("*.trans.tsv"), None) is not None:
        return "libritts"
    raise CorpusError(f"{src}: no metadata.csv (LJSpeech) and no *.trans.tsv (LibriTTS); name the table with "
                      "--option metadata=<file> (a header row naming the columns)")


@register("table", splits=("train",), stage="any",
          options=("layout", "metadata", "delimiter", "quoting", "columns", "exclude", "audio_dir"),
          summary="a CSV/TSV metadata table: LJSpeech metadata.csv, LibriTTS *.trans.tsv, or any headed table")
def read_table(src: Path, split: str, layout: Any = None, metadata: Any = None, delimiter: Any = None,
               quoting: Any = None, columns: Any = None, exclude: Any = None, audio_dir: Any = None) -> Iterator[Row]:
    """Rows of a metadata table. Layouts (`layout=`, else found from the files):

    - `ljspeech` (https://keithito.com/LJ-Speech-Dataset/): `metadata.csv`, no header, `|`-separated
      `id|transcription|normalized transcription`, quotes inside the text (read with QUOTE_NONE); audio at
      `wavs/<id>.wav`. The normalized text is spoken (the transcription is the label `original_text`).
    - `libritts` (https://www.openslr.org/60/): every `<speaker>_<chapter>.trans.tsv` under `src`, no header,
      tab-separated `utt_id<TAB>original<TAB>normalized`; audio `<utt_id>.wav` beside the tsv. The ids
      `<speaker>_<chapter>_<paragraph>_<sentence>` give the labels `speaker_id` and `chapter_id`.
    - `header`: `metadata=<file>` (relative to `src`) with a header row; `delimiter` (default: tab for .tsv,
      `|` for .psv, else comma), `quoting` none|minimal (default: none for tab/`|`, minimal for comma);
      `columns` maps fields to columns as in the `hf` recipe (text, audio, id, speaker_id=..., ...),
      unmapped ones found under common names (Common Voice's `sentence`, `path`); audio paths are relative
      to `audio_dir` (relative to the table's folder; Common Voice: `audio_dir=clips`), default that folder.
      Every other column is a label unless listed in `exclude`.
    """
    kind = _table_layout(src, layout, metadata)
    if kind == "ljspeech":
        yield from _ljspeech(src, Path(str(metadata)) if metadata else Path("metadata.csv"))
    elif kind == "libritts":
        yield from _libritts(src)
    else:
        if metadata is None:
            raise CorpusError("recipe 'table': layout=header needs --option metadata=<table file under --src>")
        yield from _headed_table(src, Path(str(metadata)), delimiter, quoting, column_map("table", columns),
                                 _split_list(exclude), audio_dir)


def _table_file(src: Path, name: Path) -> Path:
    path = src / name
    if not path.is_file():
        raise CorpusError(f"{path}: metadata table not found")
    return path


def _transcript_rows(path: Path, delimiter: str, fields_named: str) -> Iterator[SkippedItem | tuple[str, str, str, dict]]:
    """The rows of an `id<sep>original[<sep>normalized]` transcript table (LJSpeech, LibriTTS): per row
    (where, id, text, labels), the text being the normalized transcription where there is one and
    `original_text` a label when it differs; a malformed row as a SkippedItem."""
    for lineno, fields in enumerate(_read_table("table", path, delimiter, csv.QUOTE_NONE), start=1):
        if not fields or fields == [""]:
            continue
        where = f"{path}:{lineno}"
        if len(fields) not in (2, 3) or not fields[0].strip():
            yield SkippedItem(where, fields[0] or None, f"malformed row: {len(fields)} {fields_named}")
            continue
        item_id, original = fields[0].strip(), fields[1].strip()
        normalized = fields[2].strip() if len(fields) == 3 else ""
        labels: dict[str, Any] = {"original_text": original} if normalized and normalized != original else {}
        yield where, item_id, normalized or original, labels


def _ljspeech(src: Path, name: Path) -> Iterator[Row]:
    path = _table_file(src, name)
    for row in _transcript_rows(path, "|", "'|'-separated fields, expected id|transcription|normalized transcription"):
        if isinstance(row, SkippedItem):
            yield row
            continue
        where, item_id, text, labels = row
        yield SourceItem(id=item_id, reply_text=text, where=where, reply_audio=Path("wavs") / f"{item_id}.wav",
                         labels=labels, base=path.parent)


def _libritts(src: Path) -> Iterator[Row]:
    tables = sorted(src.rglob("*.trans.tsv"))
    if not tables:
        raise CorpusError(f"{src}: no *.trans.tsv files (LibriTTS layout)")
    for path in tables:
        for row in _transcript_rows(path, "\t", "tab-separated fields, expected utt_id, original, normalized"):
            if isinstance(row, SkippedItem):
                yield row
                continue
            where, item_id, text, labels = row
            parts = item_id.split("_")
            if len(parts) >= 2:
                labels[SPEAKER_LABEL], labels["chapter_id"] = parts[0], parts[1]
            yield SourceItem(id=item_id, reply_text=text, where=where, reply_audio=Path(f"{item_id}.wav"),
                             labels=labels, base=path.parent)


def _headed_table(src: Path, name: Path, delimiter: Any, quoting: Any, mapping: dict[str, str], exclude: set[str],
                  audio_dir: Any) -> Iterator[Row]:
    path = _table_file(src, name)
    sep = str(delimiter) if delimiter is not None else {".tsv": "\t", ".psv": "|"}.get(path.suffix.lower(), ",")
    sep = "\t" if sep in ("\\t", "tab") else sep
    if len(sep) != 1:
        raise CorpusError(f"recipe 'table': delimiter={delimiter!r} must be one character (or 'tab')")
    mode = str(quoting) if quoting is not None else ("minimal" if sep == "," else "none")
    if mode not in QUOTING:
        raise CorpusError(f"recipe 'table': quoting={quoting!r} is not one of {', '.join(QUOTING)}")
    rows = _read_table("table", path, sep, QUOTING[mode])
    if not rows or not any(h.strip() for h in rows[0]):
        raise CorpusError(f"{path}:1: no header row naming the columns")
    header = [h.strip() for h in rows[0]]
    fields = _resolve_columns("table", str(path), header, mapping, required=("reply_text", "reply_audio"))
    base = path.parent / str(audio_dir) if audio_dir else path.parent
    for lineno, values in enumerate(rows[1:], start=2):
        if not values or values == [""]:
            continue
        where = f"{path}:{lineno}"
        if len(values) != len(header):
            yield SkippedItem(where, values[0] or None, f"malformed row: {len(values)} fields, the header has "
                                                        f"{len(header)}")
            continue
        row = dict(zip(header, values))
        audio = row.get(fields["reply_audio"], "").strip()
        if audio:
            row[fields["reply_audio"]] = Path(audio)
        fallback = Path(audio).with_suffix("").as_posix() if audio else f"row{lineno}"
        yield _item_from_row(row, fields, exclude, fallback_id=fallback, where=where, base=base)
