"""The shared writer: one recipe's rows → WAV files, a manifest, the reply texts, a skip report and a data card.

`prepare(name, src, out, split)` writes, for one split (`<split>` as `sa_slm.paths.safe_filename` makes it):

    <out>/<split>.jsonl                manifest (`sa_slm.data.manifest`), audio paths relative to <out>
    <out>/wavs/<split>/reply/<id>.wav  reply audio; user audio under wavs/<split>/user/
    <out>/<split>.texts.txt            the distinct reply texts, one per line (stage-0 `bootstrap.texts_file`)
    <out>/<split>.skipped.jsonl        {"where", "id", "reason"} for every row left out
    <out>/<split>.card.json, .card.md, .durations.png   the data card (`sa_slm.corpora.card`)

Manifest lines: the item's fields, then every label as a top-level key. A label named like a manifest key
(`KNOWN_KEYS`) is renamed: `speaker` → `speaker_id` (the manifest's `speaker` is a Token2Wav speaker of the
model, never a source's speaker), any other `<key>` → `source_<key>` (`source_<key>_2`, ... while taken).
Labels whose value is None are left out; numpy values become plain JSON numbers; bytes are dropped.
An item with no user side (a TTS corpus) gets `user_text` = `DEFAULT_USER_TEXT` (or `user_text=`), since
every manifest line needs a user turn; the card counts these items.

Audio is written as WAV keeping the source's sample rate, channels and sample format where WAV holds it
(16/24/32-bit PCM, float), so the written samples equal the source's; compressed sources (MP3, Vorbis)
become 16-bit PCM. Rows left out, each reported with where it is and why: a duplicate id, an empty reply
text, audio that is missing, undecodable, empty, not finite, or a path that leaves the source folder.

Re-running over an existing <out> replaces that split's outputs: the new files are built beside the old
ones (`<out>/.<split>.partial/`) and swapped in at the end, so a run that stops part-way leaves the
previous outputs as they were (a later run clears the partial folder).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..audio import load_audio
from ..config import did_you_mean
from ..data.manifest import KNOWN_KEYS, load_manifest, schema_problems
from ..errors import AudioError
from ..paths import distinct_filenames, path_inside, safe_filename, write_text_atomic
from .base import RECIPES, SPEAKER_LABEL, AudioRef, CorpusError, Recipe, SkippedItem, SourceItem
from .card import CardStats, write_card
from .sources import inside_source

#: The user turn given to items whose source has none (TTS corpora: the reply is read out as asked).
DEFAULT_USER_TEXT = "Please read this text aloud."
#: Label keys renamed when they collide with a manifest key (other collisions: `source_<key>`).
LABEL_RENAMES = {"speaker": SPEAKER_LABEL}
#: WAV sample formats kept as they are (the dtype they are read as keeps every sample exact).
_WAV_DTYPES = {"PCM_U8": "int16", "PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32", "FLOAT": "float32",
               "DOUBLE": "float64"}
_LOSSLESS_AS = {"PCM_S8": "PCM_16"}  # FLAC's 8-bit PCM, which WAV stores unsigned; 16-bit keeps it exact


@dataclass
class PreparedCorpus:
    """What `prepare` wrote (paths) and counted."""

    recipe: str
    split: str
    out: Path
    manifest: Path
    texts: Path
    skipped_file: Path
    card_json: Path
    card_md: Path
    durations_png: Path | None
    items: int
    reply_seconds: float
    skipped: list[SkippedItem] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return self.reply_seconds / 3600


def recipe_names() -> list[str]:
    return sorted(RECIPES)


def get_recipe(name: str) -> Recipe:
    """The registered recipe `name`; CorpusError listing the recipes (with a did-you-mean) otherwise."""
    if name not in RECIPES:
        raise CorpusError(f"unknown recipe {name!r}; recipes: {', '.join(recipe_names())}"
                          f"{did_you_mean(name, recipe_names())} (`sa-slm data list` describes them)")
    return RECIPES[name]


def _overlap(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def check_arguments(name: str, src: str | Path, out: str | Path, split: str | None,
                    options: dict[str, Any]) -> tuple[Recipe, Path, Path, str]:
    """Everything about the arguments that can be checked without reading rows: the recipe, the source
    folder, the output folder (not the source, not inside it or around it), the options and the split."""
    recipe = get_recipe(name)
    src, out = Path(src), Path(out)
    if not src.is_dir():
        what = "is a file, not a folder" if src.exists() else "not found"
        raise CorpusError(f"--src {src}: {what}; give the folder of the {name} download")
    if out.exists() and not out.is_dir():
        raise CorpusError(f"--out {out}: a file, not a folder; choose another output folder")
    if _overlap(src, out):
        raise CorpusError(f"--out {out} and --src {src} overlap; write the prepared data to a folder outside "
                          "the download (and not around it)")
    unknown = sorted(set(options) - set(recipe.options))
    if "columns" in unknown:
        raise CorpusError(f"recipe {name!r} takes no column mapping (--column); its layout names the columns")
    if unknown:
        takes = ", ".join(recipe.options) if recipe.options else "no options"
        raise CorpusError(f"recipe {name!r} has no option {unknown[0]!r}; it takes {takes}"
                          f"{did_you_mean(unknown[0], recipe.options)}")
    splits = recipe.splits_of(src, options)
    if split is None:
        split = splits[0]
    elif split not in splits:
        raise CorpusError(f"recipe {name!r}: {src} has no split {split!r}; splits: {', '.join(splits)}"
                          f"{did_you_mean(split, splits)}")
    return recipe, src, out, split


def _read_sound(handle: Any) -> tuple[np.ndarray, int, str]:
    """(samples (T,) or (T, C), sample rate, WAV subtype to write them with) from a file or file object."""
    with sf.SoundFile(handle) as f:
        subtype = _LOSSLESS_AS.get(f.subtype, f.subtype)
        if subtype not in _WAV_DTYPES:  # MP3, Vorbis, Opus: decoded floats, stored as 16-bit PCM
            return f.read(dtype="float32", always_2d=False), f.samplerate, "PCM_16"
        return f.read(dtype=_WAV_DTYPES[subtype], always_2d=False), f.samplerate, subtype


def decode_audio(ref: AudioRef, base: Path, src: Path) -> tuple[np.ndarray, int, str]:
    """Decode any `AudioRef` to (samples, rate, subtype). Raises AudioError with a one-line reason:
    a path outside `src`, a missing file, undecodable bytes, empty or non-finite audio."""
    if isinstance(ref, dict):
        if "array" in ref and "sampling_rate" in ref:  # a decoded Hugging Face cell
            ref = (np.asarray(ref["array"]), int(ref["sampling_rate"]))
        elif ref.get("bytes"):
            ref = ref["bytes"]
        elif ref.get("path"):
            ref = Path(ref["path"])
        else:
            raise AudioError("the audio cell has neither bytes nor a path")
    shown = ""  # the file, for a path reference
    try:
        if isinstance(ref, (bytes, bytearray, memoryview)):
            wav, sr, subtype = _read_sound(io.BytesIO(bytes(ref)))
        elif isinstance(ref, (str, Path)):
            path = Path(base, ref)
            shown = f"{path}: "
            if not inside_source(src, path):
                raise AudioError(f"{ref}: the audio path leaves the source folder {src}")
            if not path.is_file():
                raise AudioError(f"{path}: audio file not found")
            wav, sr, subtype = _read_sound(str(path))
        elif isinstance(ref, tuple) and len(ref) == 2:
            wav, sr = np.asarray(ref[0]), int(ref[1])
            if wav.ndim == 2 and wav.shape[0] < wav.shape[1]:  # (C, T) as torchaudio gives it -> (T, C)
                wav = wav.T
            subtype = {"int16": "PCM_16", "int32": "PCM_32", "float64": "DOUBLE"}.get(wav.dtype.name, "FLOAT")
            if subtype == "FLOAT":
                wav = wav.astype(np.float32)
        else:
            raise AudioError(f"unsupported audio reference of type {type(ref).__name__}")
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError for bad data
        detail = " ".join(str(exc).split())
        if detail.startswith("Error opening"):  # drop soundfile's "Error opening <file object at 0x...>: "
            detail = detail.split(": ", 1)[-1]
        raise AudioError(f"{shown}cannot decode audio ({detail})") from exc
    if sr <= 0:
        raise AudioError(f"sample rate {sr} is not positive")
    load_audio(wav, target_sr=sr, sampling_rate=sr)  # empty / NaN / shape checks, one source of truth
    return wav, sr, subtype


def _plain(value: Any) -> Any:
    """A label value as plain JSON (numpy → Python, dates → ISO text); None for values JSON cannot hold
    (bytes), which are then left out."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def manifest_labels(labels: dict[str, Any]) -> dict[str, Any]:
    """The labels as manifest keys (this module's docstring: renames, None and bytes left out)."""
    out: dict[str, Any] = {}
    for key, value in labels.items():
        value = _plain(value)
        if value is None:
            continue
        key = str(key)
        if key in KNOWN_KEYS:
            target = LABEL_RENAMES.get(key)
            if target is None or target in labels or target in out or target in KNOWN_KEYS:
                target, k = f"source_{key}", 2
                while target in labels or target in out:
                    target, k = f"source_{key}_{k}", k + 1
            key = target
        out[key] = value
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class _Written:
    """One kept item while the split is being written: its id and which audio it has (file names are given
    at the end, when every id is known, by `distinct_filenames`)."""

    id: str
    reply: bool
    user: bool


class _Split:
    """Writes one split into a partial folder and swaps it in at the end."""

    def __init__(self, src: Path, out: Path, split: str, user_text: str) -> None:
        self.src, self.out, self.user_text = src, out, user_text
        self.name = safe_filename(split)
        self.partial = path_inside(out, f".{self.name}.partial")
        self.stats = CardStats()
        self.kept: list[_Written] = []
        self.first_at: dict[str, str] = {}
        self.texts: dict[str, None] = {}  # ordered set of reply texts

    def start(self) -> None:
        if self.partial.exists():
            shutil.rmtree(self.partial)
        (self.partial / "reply").mkdir(parents=True)
        (self.partial / "user").mkdir()
        self.lines = open(self.partial / "lines.jsonl", "w", encoding="utf-8")

    def skip(self, where: str, item_id: str | None, reason: str) -> None:
        self.stats.skipped.append(SkippedItem(where, item_id, reason))

    def add(self, item: SourceItem) -> None:
        """Check, decode and stage one item; a bad one is recorded as skipped."""
        item_id = item.id if isinstance(item.id, str) else None
        if not item_id or not item_id.strip():
            return self.skip(item.where, None, "no id: the row has an empty id")
        if item_id in self.first_at:
            return self.skip(item.where, item_id, f"duplicate id: first at {self.first_at[item_id]}")
        if not isinstance(item.reply_text, str) or not item.reply_text.strip():
            return self.skip(item.where, item_id, "empty text: the row has no reply text")
        base = Path(item.base) if item.base is not None else self.src
        if not inside_source(self.src, base):
            return self.skip(item.where, item_id, f"bad audio path: {base} lies outside the source folder")
        decoded: dict[str, tuple[np.ndarray, int, str] | None] = {}
        for side, ref in (("reply", item.reply_audio), ("user", item.user_audio)):
            try:
                decoded[side] = decode_audio(ref, base, self.src) if ref is not None else None
            except AudioError as exc:
                return self.skip(item.where, item_id, f"bad {side} audio: {exc}")
        default_user = item.user_audio is None and not item.user_text
        line: dict[str, Any] = {"id": item_id}
        if item.system_prompt:
            line["system_prompt"] = item.system_prompt
        if item.history:
            line["history"] = item.history
        line["user_text"] = self.user_text if default_user else (item.user_text or None)
        if decoded["user"] is not None:
            line["user_audio"] = ""  # the path is filled in when file names are given
        line["reply_text"] = item.reply_text
        if decoded["reply"] is not None:
            line["reply_audio"] = ""
        line = {k: v for k, v in line.items() if v is not None}
        line.update(manifest_labels(item.labels))
        named = {key: "staged.wav" for key in ("user_audio", "reply_audio") if key in line}  # paths come later
        problems = schema_problems({**line, **named}, self.out, False, None)
        if problems:
            return self.skip(item.where, item_id, f"bad row: {'; '.join(problems)}")
        index = len(self.kept)
        seconds: dict[str, float | None] = {"reply": None, "user": None}
        for side, audio in decoded.items():
            if audio is not None:
                wav, sr, subtype = audio
                sf.write(str(self.partial / side / f"{index}.wav"), wav, sr, subtype=subtype, format="WAV")
                seconds[side] = wav.shape[0] / sr
        self.first_at[item_id] = item.where
        self.kept.append(_Written(item_id, decoded["reply"] is not None, decoded["user"] is not None))
        self.lines.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.texts.setdefault(_one_line(item.reply_text))
        self.stats.add(line, seconds["reply"], seconds["user"], default_user)

    def finish(self) -> tuple[Path, Path, Path]:
        """Give the files their names, write the manifest/texts/skip report and swap them in."""
        self.lines.close()
        names = distinct_filenames(w.id for w in self.kept)  # ids are distinct: one file name each
        wav_root = Path("wavs") / self.name
        with open(self.partial / "lines.jsonl", encoding="utf-8") as staged:
            manifest_lines = []
            for index, (written, text) in enumerate(zip(self.kept, staged)):
                line = json.loads(text)
                for side, present in (("reply", written.reply), ("user", written.user)):
                    if present:
                        name = names[written.id] + ".wav"
                        os.replace(self.partial / side / f"{index}.wav", self.partial / side / name)
                        line[f"{side}_audio"] = (wav_root / side / name).as_posix()
                manifest_lines.append(json.dumps(line, ensure_ascii=False))
        manifest = path_inside(self.out, self.name, suffix=".jsonl")
        texts = path_inside(self.out, self.name, suffix=".texts.txt")
        skipped = path_inside(self.out, self.name, suffix=".skipped.jsonl")
        (self.partial / "lines.jsonl").unlink()
        for side in ("reply", "user"):
            if not any((self.partial / side).iterdir()):
                (self.partial / side).rmdir()
        wavs = path_inside(self.out, "wavs", self.name)
        wavs.parent.mkdir(parents=True, exist_ok=True)
        old = self.partial.with_name(self.partial.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        if wavs.exists():
            os.replace(wavs, old)
        os.replace(self.partial, wavs)
        write_text_atomic(manifest, "".join(line + "\n" for line in manifest_lines))
        if old.exists():
            shutil.rmtree(old)
        write_text_atomic(texts, "".join(t + "\n" for t in self.texts))
        write_text_atomic(skipped, "".join(json.dumps({"where": s.where, "id": s.id, "reason": s.reason},
                                                      ensure_ascii=False) + "\n" for s in self.stats.skipped))
        return manifest, texts, skipped

    def abort(self) -> None:
        if not self.lines.closed:
            self.lines.close()
        shutil.rmtree(self.partial, ignore_errors=True)


def prepare(name: str, src: str | Path, out: str | Path, split: str | None = None, *, progress: bool = True,
            user_text: str = DEFAULT_USER_TEXT, **options: Any) -> PreparedCorpus:
    """Prepare one split of a local download with the recipe `name` (this module's docstring: what is
    written where). `options` go to the recipe's reader (`RECIPES[name].options`). Arguments are checked
    before any row is read, and the reader's first row is read before anything is written (a layout it
    cannot read raises CorpusError and leaves `out` untouched); a bad row is skipped and reported."""
    if not isinstance(user_text, str) or not user_text.strip():
        raise CorpusError("user_text: the default user text must not be empty")
    options = {k: v for k, v in options.items() if v is not None}
    recipe, src, out, split = check_arguments(name, src, out, split, options)
    rows: Iterator = iter(recipe.read(src, split, **options))
    first = next(rows, None)  # the reader checks its layout and options before its first row
    writer = _Split(src, out, split, user_text.strip())
    writer.start()
    try:
        with tqdm(desc=f"prepare {name}/{split}", unit="row", disable=not progress) as bar:
            row = first
            while row is not None:
                if isinstance(row, SkippedItem):
                    writer.skip(row.where, row.id, row.reason)
                else:
                    writer.add(row)
                bar.update(1)
                row = next(rows, None)
        if not writer.kept:
            raise CorpusError(f"{src}: no usable rows in split {split!r} ({len(writer.stats.skipped)} skipped; "
                              f"first reason: {writer.stats.skipped[0].reason if writer.stats.skipped else 'no rows'})")
        manifest, texts, skipped_file = writer.finish()
    except BaseException:
        writer.abort()
        raise
    card_json = path_inside(out, writer.name, suffix=".card.json")
    card_md = path_inside(out, writer.name, suffix=".card.md")
    png_path = path_inside(out, writer.name, suffix=".durations.png")
    files = {"manifest": str(manifest), "texts": str(texts), "skipped": str(skipped_file)}
    card = writer.stats.card(recipe=name, split=split, source=str(src), files=files)
    png = write_card(card, card_json, card_md, png_path)
    examples = load_manifest(manifest)  # what every stage reads must accept what was written
    if len(examples) != len(writer.kept):
        raise AssertionError(f"{manifest}: load_manifest read {len(examples)} items, {len(writer.kept)} written")
    return PreparedCorpus(name, split, out, manifest, texts, skipped_file, card_json, card_md, png,
                          len(writer.kept), card["reply_seconds"], list(writer.stats.skipped))
