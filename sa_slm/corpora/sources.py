"""Reading helpers the recipes share: finding files under a download, reading JSON/JSONL records and
parquet shards, and locating the audio a metadata file names.

Every reader walks its own layout (its module docstring), but the ways a download stores rows are few: JSON
lists or JSONL lines, Hugging Face parquet shards (`data/<split>-XXXXX-of-YYYYY.parquet`), audio files
named by path. One helper per way, so that a fix (a non-UTF-8 line, a split naming rule) reaches them all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from .base import CorpusError

#: Audio files the recipes pick up by suffix (formats libsndfile decodes, which the writer reads with).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
BATCH_ROWS = 64  # rows per parquet read: audio bytes make rows large


def inside_source(root: Path, path: Path) -> bool:
    """`path` lies under `root` by its names alone (`..` resolved, symbolic links not followed): the one
    containment rule for source files. Links are not followed on purpose: a hub snapshot's files are
    links into its blob store, outside the snapshot folder."""
    root_s = os.path.normpath(os.path.abspath(root))
    path_s = os.path.normpath(os.path.abspath(path))
    return os.path.commonpath([root_s, path_s]) == root_s


def files_under(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Every file under `root` (recursively, sorted) whose suffix, in lower case, is one of `suffixes`."""
    wanted = {s.lower() for s in suffixes}
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in wanted and p.is_file())


class AudioLocator:
    """Finds a source's audio file from the path a metadata file names, inside the source folder only.

    Metadata written on the authors' machines often carries their folder prefix (absolute paths, or
    `data/<release>/...`); the download keeps only the tail. Tried in order: the path relative to the
    metadata file's folder, relative to the source root, the same with leading folders dropped one by
    one, and last the file name anywhere under the root (an index of `AUDIO_SUFFIXES` files, built once,
    on first need).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_name: dict[str, Path | None] | None = None  # file name → path; None when ambiguous

    def find(self, ref: str, near: Path) -> Path | None:
        """The file `ref` names, or None when it is not under the root (or its name is ambiguous)."""
        parts = Path(ref.replace("\\", "/")).parts
        parts = parts[1:] if parts and Path(parts[0]).anchor else parts  # an absolute path: drop its root
        candidates = [near.joinpath(*parts)] if parts else []
        candidates += [self.root.joinpath(*parts[i:]) for i in range(len(parts))]
        for path in candidates:
            if path.is_file() and inside_source(self.root, path):
                return path
        if not parts:
            return None
        if self._by_name is None:
            self._by_name = {}
            for path in files_under(self.root, AUDIO_SUFFIXES):
                self._by_name[path.name] = None if path.name in self._by_name else path
        return self._by_name.get(parts[-1])


def json_records(path: Path, shown: str) -> Iterator[tuple[str, Any]]:
    """(where, record) for each record of a JSON list file or a JSONL file (`where` = `<shown>:<line>` or
    `<shown>#<index>`). A JSONL line that is not JSON or not UTF-8 is yielded as (where, the exception), so
    that one bad line is skipped, not the file. A JSON file that does not parse raises CorpusError."""
    if path.suffix == ".jsonl":
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, start=1):
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 BOM
                if raw.strip():
                    try:
                        yield f"{shown}:{lineno}", json.loads(raw.decode("utf-8"))
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        yield f"{shown}:{lineno}", exc
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: not a readable JSON file ({exc})") from exc
    for i, record in enumerate(data if isinstance(data, list) else [data]):
        yield f"{shown}#{i}", record


def parquet_splits(src: Path) -> dict[str, list[Path]]:
    """{split: parquet files} by the hub's file-naming rules (`data/train-00000-of-00002.parquet`,
    `test.parquet`, `train/…`; files that name no split are `train`), as `datasets` resolves them."""
    from datasets.data_files import DataFilesDict, get_data_patterns

    patterns = get_data_patterns(str(src))
    files = DataFilesDict.from_patterns(patterns, base_path=str(src))
    out = {str(split): sorted(str(f) for f in found if str(f).endswith(".parquet")) for split, found in files.items()}
    return {split: [Path(f) for f in found] for split, found in out.items() if found}


def parquet_files(src: Path, split: str, corpus: str) -> list[Path]:
    """The parquet shards of `split` under `src` (`parquet_splits`); CorpusError naming the files found
    when the split has none."""
    src = Path(src)
    if not src.is_dir():
        raise CorpusError(f"{src}: not a folder; expected the {corpus} download")
    every = sorted(src.rglob("*.parquet"))
    chosen = {os.path.abspath(f) for f in parquet_splits(src).get(split, [])} if every else set()
    files = [p for p in every if os.path.abspath(p) in chosen]  # as found under `src`, not made absolute
    if not files:
        names = ", ".join(p.relative_to(src).as_posix() for p in every[:5]) or "none"
        raise CorpusError(f"{src}: no parquet files for split {split!r} of {corpus} (expected "
                          f"data/{split}-XXXXX-of-YYYYY.parquet; parquet files found: {names})")
    return files


def open_parquet(path: Path) -> Any:
    """A `pyarrow.parquet.ParquetFile` (its schema read, no rows); CorpusError for a file that is not parquet."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a file that is not parquet
        raise CorpusError(f"{path}: not a readable parquet file ({exc})") from exc


def parquet_rows(path: Path, src: Path, required: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for each row of one shard (`where` = `<shard under src>#<row>`), read in small
    batches; raises CorpusError when a required column is missing."""
    table = open_parquet(path)
    missing = [c for c in required if c not in table.schema_arrow.names]
    if missing:
        raise CorpusError(f"{path}: missing column(s) {missing}; columns are {table.schema_arrow.names}")
    shown = path.relative_to(src).as_posix()
    i = 0
    for batch in table.iter_batches(batch_size=BATCH_ROWS):
        for row in batch.to_pylist():
            yield f"{shown}#{i}", row
            i += 1
