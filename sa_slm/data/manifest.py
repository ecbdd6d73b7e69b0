"""The JSONL manifest every stage reads, validated up front with `file:line: problem` errors.

One JSON object per line:

    {"id": "r03_happy",                     # optional, defaults to "<file>:<line>"
     "user_audio": "wavs/q03.wav",          # user speech (path, relative to the manifest), and/or
     "user_text": "How did it go?",         # user text; at least one of the two
     "history": [{"role": "user", "text": "..."}, {"role": "assistant", "text": "..."}],  # optional
     "system_prompt": "...",                # optional
     "reply_text": "It went great!",        # required, non-empty
     "reply_audio": "wavs/r03_happy.wav",   # optional reply speech
     "reply_codes": [12, 873, ...],         # optional Talker codes of the reply (stage 0 fills them)
     "speaker": "Chelsie",                  # optional Token2Wav speaker of the reply
     "emotion": "happy"}                    # any other key is kept as a label
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import read_utf8
from ..errors import ManifestError

KNOWN_KEYS = {"id", "user_audio", "user_text", "history", "system_prompt", "reply_text", "reply_audio",
              "reply_codes", "speaker"}
ROLES = {"user", "assistant"}


@dataclass
class Example:
    id: str
    reply_text: str
    user_audio: Path | None = None
    user_text: str | None = None
    history: list[tuple[str, str]] = field(default_factory=list)
    system_prompt: str | None = None
    reply_audio: Path | None = None
    reply_codes: list[int] | None = None
    speaker: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "<file>:<line>", for error messages


def schema_problems(obj: Any, base: Path, check_files: bool, codebook_size: int | None) -> list[str]:
    """What is wrong with one parsed manifest line (empty when nothing): the one schema check every reader
    (manifest loader, `sa-slm tokenize`, the data audit) applies."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    out = []
    reply = obj.get("reply_text")
    if not isinstance(reply, str) or not reply.strip():
        out.append("'reply_text' is missing or empty; every example needs the text of the reply")
    if obj.get("user_audio") is None and not obj.get("user_text"):
        out.append("needs 'user_audio' or 'user_text' (or both)")
    for key in ("user_audio", "reply_audio"):
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            out.append(f"'{key}' must be a path string")
        elif check_files and not (base / value).is_file():
            out.append(f"'{key}' file not found: {base / value}")
    for key in ("user_text", "system_prompt", "speaker", "id"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            out.append(f"'{key}' must be a string")
    history = obj.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(t, dict) and t.get("role") in ROLES and isinstance(t.get("text"), str) for t in history
    ):
        out.append("'history' must be a list of {\"role\": \"user\"|\"assistant\", \"text\": str}")
    codes = obj.get("reply_codes")
    if codes is not None:
        if not isinstance(codes, list) or not codes or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
            out.append("'reply_codes' must be a non-empty list of integers")
        elif codebook_size is not None and not all(0 <= c < codebook_size for c in codes):
            bad = next(c for c in codes if not 0 <= c < codebook_size)
            out.append(f"'reply_codes' holds {bad}, outside the codec vocabulary 0..{codebook_size - 1}")
    return out


@dataclass
class BadLine:
    """A manifest line that cannot be used: where it is, its id (if readable) and what is wrong."""

    where: str  # "<file>:<line>"
    id: str
    problems: list[str]


def read_lines(path: Path) -> list[str]:
    """The lines of a JSONL file, split on "\\n" only (a trailing "\\r" dropped, a UTF-8 BOM accepted).

    `str.splitlines()` would also break at U+2028/U+2029 and other separators that JSON strings may hold
    unescaped, shifting every later line number. A file that is not UTF-8 raises ManifestError naming the
    line and byte offset.
    """
    text = read_utf8(path, ManifestError)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline ending the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@dataclass
class ManifestLine:
    """One non-blank line: its number, text, parsed object (None when not JSON) and schema problems."""

    lineno: int
    where: str  # "<file>:<line>"
    text: str
    obj: Any
    problems: list[str]

    @property
    def id(self) -> str:
        """The explicit id when it is a string, else `where`."""
        obj = self.obj
        return obj["id"] if isinstance(obj, dict) and isinstance(obj.get("id"), str) and obj["id"] else self.where


def check_lines(
    path: Path, lines: list[str], check_files: bool = True, codebook_size: int | None = None
) -> list[ManifestLine]:
    """Parse and validate every non-blank line of `path` (the schema of this module's docstring).

    A second line with the same explicit `id` is a problem of that line, so every reader (training,
    evaluation, `sa-slm tokenize`) sees duplicates the same way.
    """
    base, out, first_at = path.parent, [], {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append(ManifestLine(lineno, where, line, None, [f"not valid JSON ({exc.msg} at column {exc.colno})"]))
            continue
        entry = ManifestLine(lineno, where, line, obj, schema_problems(obj, base, check_files, codebook_size))
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            if obj["id"] in first_at:
                entry.problems.append(f"duplicate id '{obj['id']}' (first at {first_at[obj['id']]})")
            else:
                first_at[obj["id"]] = where
        out.append(entry)
    return out


def read_manifest(
    path: str | Path, check_files: bool = True, codebook_size: int | None = None
) -> tuple[list[Example], list[BadLine]]:
    """Every usable example and every bad line, for readers that go on past bad lines (evaluation)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    base = path.parent
    examples, bad = [], []
    for line in check_lines(path, read_lines(path), check_files, codebook_size):
        if line.problems:
            bad.append(BadLine(line.where, line.id, line.problems))
            continue
        obj, where = line.obj, line.where
        examples.append(
            Example(
                id=line.id,
                reply_text=obj["reply_text"],
                user_audio=base / obj["user_audio"] if obj.get("user_audio") else None,
                user_text=obj.get("user_text"),
                history=[(t["role"], t["text"]) for t in obj.get("history", [])],
                system_prompt=obj.get("system_prompt"),
                reply_audio=base / obj["reply_audio"] if obj.get("reply_audio") else None,
                reply_codes=obj.get("reply_codes"),
                speaker=obj.get("speaker"),
                labels={k: v for k, v in obj.items() if k not in KNOWN_KEYS},
                source=where,
            )
        )
    return examples, bad


def load_manifest(
    path: str | Path, check_files: bool = True, codebook_size: int | None = None
) -> list[Example]:
    """Read and validate every line; raise one ManifestError listing all bad lines."""
    examples, bad = read_manifest(path, check_files, codebook_size)
    problems = [f"{b.where}: {p}" for b in bad for p in b.problems]
    if problems:
        raise ManifestError(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(problems))
    if not examples:
        raise ManifestError(f"{path}: manifest has no examples")
    return examples


def example_to_json(ex: Example, base: Path) -> dict:
    """Inverse of the loader (paths relative to `base` where possible)."""
    def rel(p: Path | None):
        if p is None:
            return None
        try:
            return str(Path(p).resolve().relative_to(base.resolve()))
        except ValueError:
            return str(p)

    obj = {"id": ex.id, "user_audio": rel(ex.user_audio), "user_text": ex.user_text,
           "history": [{"role": r, "text": t} for r, t in ex.history], "system_prompt": ex.system_prompt,
           "reply_text": ex.reply_text, "reply_audio": rel(ex.reply_audio), "reply_codes": ex.reply_codes,
           "speaker": ex.speaker, **ex.labels}
    return {k: v for k, v in obj.items() if v not in (None, [])}


class ExampleDataset:
    """A list of examples as a map-style dataset (what the stage trainers iterate over)."""

    def __init__(self, examples: list[Example]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Example:
        return self.examples[i]
