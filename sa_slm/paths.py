"""Where the files that ship inside the package live: model presets, rubrics, stage configs, the tiny corpus.

Everything is package data under `sa_slm/resources/`, found with `importlib.resources`, so a wheel
installed anywhere finds it; the checkout's top-level `configs/`, `rubrics/` and `data/tiny_corpus`
are links into that folder. Configs refer to shipped files as `${resource:tiny_corpus/manifest.jsonl}`
(an OmegaConf resolver registered by `sa_slm.config`).

Data-derived names (example ids, EchoMind case ids, model names, metric and stage names) become file
and folder names only through `safe_filename` / `distinct_filenames`, and are joined to an output
folder only through `path_inside`, which refuses any path that would resolve outside that folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib.resources import files
from pathlib import Path
from typing import Iterable

from .errors import SASLMError

#: The package-data folder (a real folder: the package is installed unpacked, never imported from a zip).
RESOURCES = Path(str(files("sa_slm") / "resources"))
CONFIG_DIR = RESOURCES / "configs"
MODEL_CONFIG_DIR = CONFIG_DIR / "models"
RUBRIC_DIR = RESOURCES / "rubrics"
CORPUS_DIR = RESOURCES / "tiny_corpus"


def resource(relative: str) -> Path:
    """A shipped file by its path inside `sa_slm/resources/`; FileNotFoundError names what exists."""
    path = (RESOURCES / relative).resolve()
    if RESOURCES.resolve() not in path.parents or not path.exists():
        available = ", ".join(sorted(p.name for p in RESOURCES.iterdir()))
        raise FileNotFoundError(f"no shipped resource {relative!r} (resources: {available})")
    return path


class UnsafePathError(SASLMError, ValueError):
    """A file name taken from data that would resolve outside the folder it is written to."""


MAX_NAME = 100  # characters of a sanitised name; leaves room for a suffix within any file system's 255 bytes
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._-]")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_SAFE_SUFFIX = re.compile(r"[A-Za-z0-9._-]*")
_HASH_LEN = 10  # hex digits of SHA-1 appended to a name that had to change
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10))}


def _is_safe(name: str, max_len: int) -> bool:
    return (0 < len(name) <= max_len and _SAFE_NAME.fullmatch(name) is not None and not name.endswith(".")
            and name.split(".")[0].upper() not in _WINDOWS_DEVICES)


def safe_filename(name: object, max_len: int = MAX_NAME) -> str:
    """`name` as one file-name component that cannot leave its folder: ASCII letters, digits, `_`, `-`, `.`;
    never empty, `.`, `..`, hidden (leading `.`), option-like (leading `-`), ending in `.`, or a Windows
    device name; at most `max_len` characters.

    A name that is already like that is kept as it is; any other gets its unsafe characters replaced by
    `_`, is cut to fit, and ends in `-` + the first 10 hex digits of the SHA-1 of the original (UTF-8),
    so distinct names stay distinct and the result is the same in every run and on every machine.
    Applied to its own result it changes nothing.
    """
    text = str(name)
    if max_len < _HASH_LEN + 2:
        raise ValueError(f"max_len must be at least {_HASH_LEN + 2}, got {max_len}")
    if _is_safe(text, max_len):
        return text
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
    head = re.sub(r"^[.-]", "_", _UNSAFE_CHAR.sub("_", text)) or "_"
    if head.split(".")[0].upper() in _WINDOWS_DEVICES:
        head = "_" + head
    return f"{head[: max_len - _HASH_LEN - 1]}-{digest}"


def distinct_filenames(names: Iterable[object], max_len: int = MAX_NAME) -> dict[str, str]:
    """`safe_filename` of each distinct name, made distinct also where case is ignored (macOS, Windows).

    Names are taken in order; a later name whose file name equals an earlier one's up to case gets
    `-2`, `-3`, ... (the first free), so the mapping depends only on the list. Repeats of one name map
    to one file name: whether a repeat is allowed is the caller's decision.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in map(str, names):
        if name in out:
            continue
        stem = safe_filename(name, max_len)
        k = 1
        while (candidate := stem if k == 1 else f"{stem[: max_len - len(str(k)) - 1]}-{k}").casefold() in taken:
            k += 1
        out[name] = candidate
        taken.add(candidate.casefold())
    return out


def is_inside(root: Path, path: Path) -> bool:
    """True when `path` (relative to `root`, or absolute; symlinks resolved) is `root` or lies under it."""
    root, path = Path(root).resolve(), Path(root, path).resolve()
    return path == root or root in path.parents


def path_inside(root: Path, *names: object, suffix: str = "") -> Path:
    """`root/<name>/.../<last name><suffix>`, each name passed through `safe_filename`.

    Raises UnsafePathError when the joined path resolves outside `root` (a symlink inside `root` that
    points elsewhere) or when `suffix` is not a plain extension such as `.wav`.
    """
    if not names:
        raise ValueError("path_inside needs at least one name")
    if _SAFE_SUFFIX.fullmatch(suffix) is None:
        raise UnsafePathError(f"file suffix {suffix!r} may only hold letters, digits, '_', '-' and '.'")
    parts = [safe_filename(n) for n in names]
    path = Path(root).joinpath(*parts[:-1], parts[-1] + suffix)
    if not is_inside(root, path):
        raise UnsafePathError(f"{path} resolves to {path.resolve()}, outside {Path(root).resolve()} "
                              "(a symbolic link?); remove the link or choose another output folder")
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) in one step: a reader (another rank, a restarted run) sees the
    old file or the new one, never a part. The temporary file is named per process, so ranks that write
    the same file at once do not write into each other's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
