"""Data audit before training: every item of a manifest is checked once, bad items are skipped and listed.

What is a bad item (each becomes one `BadItem`, `where` = "<file>:<line>", `id`, `problem`):

- a manifest line the reader rejects (not JSON, schema errors, a file that does not exist,
  `reply_codes` outside the codec vocabulary when the codebook size is known): `read_manifest`'s checks;
- an audio file (`user_audio`, `reply_audio`) that does not decode with `load_audio`, the call the
  collators make (corrupt, empty, NaN samples);
- a `user_audio` clip longer than the audio tower takes (`max_audio_seconds`, the processor's limit);
- for stages 1-2 (`require_codes`), an item without `reply_codes`.

Schema errors and undecodable audio are treated alike: with `on_bad_item: skip` (the training default)
the item is left out, listed in `<output_dir>/audit[_<name>].jsonl` and counted in the log
("audit: N of M items skipped (see <file>)"); with `on_bad_item: error` the run stops with one
`SASLMError` naming them, before any model loads. A manifest left with no usable item always stops.

Decoding runs on threads (soundfile and soxr release the GIL), each distinct file once, and its result
is cached in `<cache_dir>/audio_audit_cache.json` under resolved path + size + mtime_ns: a restart
decodes nothing again, a file that changed is decoded again. The duration limit is applied to the cached
length, so the cache holds for any limit.

At run time (a file deleted or corrupted after the audit) the collators drop the failing item from its
batch with a logged reason (`sa_slm.data.collate`).
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import soundfile as sf
from tqdm.auto import tqdm
from transformers import WhisperFeatureExtractor

from ..audio import check_duration, load_audio
from ..errors import AudioError, InputTooLongError, SASLMError
from ..paths import write_text_atomic
from ..processor import preset_feature_extractor
from ..processor import feature_extractor_limits
from .manifest import Example, schema_problems, example_to_json, read_manifest

logger = logging.getLogger(__name__)

#: Values of the configs' `on_bad_item` key.
ON_BAD_ITEM = ("skip", "error")
MISSING_CODES = ("no 'reply_codes'; fill them with `sa-slm tokenize` and a stage-0 tokenizer (a line without "
                 "reply_audio, or whose audio failed to encode, has none)")
CACHE_FILE = "audio_audit_cache.json"
#: Rate the audit decodes at: the Whisper feature extractor's (the collators' `processor.load_audio`).
DEFAULT_SAMPLE_RATE = 16_000


class DataAuditError(SASLMError):
    """Bad items in a manifest under `on_bad_item: error`, or no usable item left."""


@dataclass(frozen=True)
class BadItem:
    """An item left out of training: where it is, its id and what is wrong with it."""

    where: str  # "<file>:<line>"
    id: str
    problem: str


@dataclass
class AuditResult:
    good: list[Example]
    bad: list[BadItem]
    decoded: int = 0  # audio files decoded by this audit (the rest came from the cache)

    @property
    def total(self) -> int:
        return len(self.good) + len(self.bad)


@dataclass
class _Clip:
    ok: bool
    seconds: float | None = None
    problem: str | None = None


def user_audio_limits(model: str) -> tuple[int, float]:
    """(sampling rate, longest user clip in seconds) of the processor `model` loads with, read without
    loading the model: a folder's saved feature extractor, else the presets' (also the released
    checkpoints'). The collators enforce the same numbers (`OmniProcessor.load_audio`)."""
    folder = Path(model)
    saved = (folder / "preprocessor_config.json").is_file()
    fe = WhisperFeatureExtractor.from_pretrained(str(folder)) if saved else preset_feature_extractor()
    return feature_extractor_limits(fe)


def _cache_key(path: Path) -> str | None:
    """`<resolved path>|<size>|<mtime_ns>`, or None for a file that cannot be stat'ed (never cached)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _decode(path: Path, sample_rate: int) -> _Clip:
    """Decode as the collators do; the length in seconds of the file as stored (what the limit checks)."""
    try:
        load_audio(path, sample_rate)
        info = sf.info(str(path))
        return _Clip(True, info.frames / info.samplerate)
    except AudioError as exc:
        return _Clip(False, problem=str(exc))
    except Exception as exc:  # noqa: BLE001 - anything the decoder raises makes this one file bad
        return _Clip(False, problem=f"{path}: cannot decode audio ({type(exc).__name__}: {exc})")


def _read_cache(file: Path | None) -> dict[str, dict]:
    if file is None or not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # an unreadable cache is rebuilt
    return data if isinstance(data, dict) else {}


def decode_clips(paths: list[Path], *, sample_rate: int = DEFAULT_SAMPLE_RATE, cache_dir: str | Path | None = None,
                 workers: int | None = None, progress: bool = True) -> tuple[dict[Path, _Clip], int]:
    """Each distinct path decoded once (threads), cached by path + size + mtime. Returns the result per
    path and how many files were decoded (not found in the cache). The bar shows on a terminal only,
    so that an `error:` line stays the first line a script reads."""
    cache_file = Path(cache_dir) / CACHE_FILE if cache_dir is not None else None
    cache = _read_cache(cache_file)
    keys = {p: _cache_key(p) for p in dict.fromkeys(paths)}
    out: dict[Path, _Clip] = {}
    todo = []
    for p, key in keys.items():
        hit = cache.get(key) if key else None
        if hit is not None:
            out[p] = _Clip(**hit)
        else:
            todo.append(p)
    if todo:
        workers = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool, \
                tqdm(total=len(todo), desc="audit audio", unit="file", disable=None if progress else True) as bar:
            for p, clip in zip(todo, pool.map(lambda q: _decode(q, sample_rate), todo)):
                out[p] = clip
                bar.update()
    if cache_file is not None and todo:
        fresh = {keys[p]: asdict(out[p]) for p in todo if keys[p]}
        audited = {key.rsplit("|", 2)[0] for key in fresh}
        kept = {k: v for k, v in cache.items() if k.rsplit("|", 2)[0] not in audited}  # drop stale versions
        write_text_atomic(cache_file, json.dumps({**kept, **fresh}))
    return out, len(todo)


def audit_examples(examples: list[Example], *, codebook_size: int | None = None,
                   max_audio_seconds: float | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
                   cache_dir: str | Path | None = None, workers: int | None = None,
                   progress: bool = True, require_codes: bool = False) -> AuditResult:
    """Split `examples` into those training can use and the bad ones (see the module docstring).

    codebook_size: check `reply_codes` with the manifest reader's own range check. max_audio_seconds:
    the longest `user_audio` the model takes (`user_audio_limits`); None: no limit. require_codes: an
    item without `reply_codes` is bad (stages 1-2 train on codes; `sa-slm tokenize` passes a line
    without `reply_audio`, or one whose audio failed, through without them).
    """
    root = Path("/")
    schema = {id(ex): schema_problems(example_to_json(ex, root), root, False, codebook_size) for ex in examples}
    paths = [p for ex in examples for p in (ex.user_audio, ex.reply_audio) if p is not None]
    clips, decoded = decode_clips(paths, sample_rate=sample_rate, cache_dir=cache_dir, workers=workers,
                                  progress=progress)
    good, bad = [], []
    for ex in examples:
        problems = list(schema[id(ex)])
        if require_codes and not ex.reply_codes:
            problems.append(MISSING_CODES)
        for key, path in (("user_audio", ex.user_audio), ("reply_audio", ex.reply_audio)):
            if path is None:
                continue
            clip = clips[path]
            if not clip.ok:
                problems.append(f"'{key}' {clip.problem}")
            elif key == "user_audio":
                try:
                    check_duration(str(path), clip.seconds, max_audio_seconds)
                except InputTooLongError as exc:
                    problems.append(f"'{key}' {exc}")
        if problems:
            bad.append(BadItem(ex.source, ex.id, "; ".join(problems)))
        else:
            good.append(ex)
    return AuditResult(good, bad, decoded)


def audit_manifest(path: str | Path, *, codebook_size: int | None = None, max_audio_seconds: float | None = None,
                   sample_rate: int = DEFAULT_SAMPLE_RATE, cache_dir: str | Path | None = None,
                   workers: int | None = None, progress: bool = True, require_codes: bool = False) -> AuditResult:
    """`read_manifest` (its bad lines become bad items) + `audit_examples` on the lines it accepts."""
    examples, lines = read_manifest(path, check_files=True, codebook_size=codebook_size)
    result = audit_examples(examples, max_audio_seconds=max_audio_seconds, sample_rate=sample_rate,
                            cache_dir=cache_dir, workers=workers, progress=progress, require_codes=require_codes)
    result.bad = [BadItem(b.where, b.id, "; ".join(b.problems)) for b in lines] + result.bad
    result.bad.sort(key=lambda b: _line_order(b.where))
    return result


def _line_order(where: str) -> tuple[str, int]:
    file, _, line = where.rpartition(":")
    return (file, int(line)) if line.isdigit() else (where, 0)


def apply_audit(result: AuditResult, on_bad_item: str, output_dir: str | Path, manifest: str | Path,
                name: str = "audit") -> list[Example]:
    """The policy: write `<output_dir>/<name>.jsonl` (a counts line, then one line per bad item), log the
    count, raise `DataAuditError` under `on_bad_item: error` when any item is bad; the good examples."""
    if on_bad_item not in ON_BAD_ITEM:
        raise DataAuditError(f"on_bad_item: {on_bad_item!r} is not one of {', '.join(ON_BAD_ITEM)}")
    file = Path(output_dir) / f"{name}.jsonl"
    counts = {"manifest": str(manifest), "items": result.total, "good": len(result.good), "skipped": len(result.bad)}
    write_text_atomic(file, "".join(json.dumps(line) + "\n" for line in [counts] + [asdict(b) for b in result.bad]))
    if result.bad and on_bad_item == "error":
        shown = "; ".join(f"{b.where}: {b.problem}" for b in result.bad[:3])
        more = f"; ... ({len(result.bad) - 3} more)" if len(result.bad) > 3 else ""
        raise DataAuditError(f"{len(result.bad)} of {result.total} items of {manifest} are bad: {shown}{more} "
                             f"(all listed in {file}); fix them, or set on_bad_item=skip to train without them")
    if not result.good:
        first = result.bad[0] if result.bad else None
        shown = f"; first: {first.where}: {first.problem}" if first else ""
        raise DataAuditError(f"{manifest}: no usable item ({len(result.bad)} bad, listed in {file}{shown})")
    message = f"audit: {len(result.bad)} of {result.total} items skipped (see {file})"
    if result.bad:
        logger.warning(message)
    else:
        logger.info(message)
    return result.good


def audited_manifest(path: str | Path, on_bad_item: str, output_dir: str | Path, name: str = "audit", *,
                     codebook_size: int | None = None, max_audio_seconds: float | None = None,
                     sample_rate: int = DEFAULT_SAMPLE_RATE, progress: bool = True,
                     require_codes: bool = False) -> list[Example]:
    """What a training recipe calls before its model loads: `audit_manifest` (cached in `output_dir`),
    then `apply_audit` (the audit file `<output_dir>/<name>.jsonl`); the examples to train on."""
    result = audit_manifest(path, codebook_size=codebook_size, max_audio_seconds=max_audio_seconds,
                            sample_rate=sample_rate, cache_dir=output_dir, progress=progress,
                            require_codes=require_codes)
    return apply_audit(result, on_bad_item, output_dir, path, name)
