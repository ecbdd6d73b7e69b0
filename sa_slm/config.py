"""Typed YAML configs: a dataclass is the schema, OmegaConf merges YAML and `key=value` overrides.

Loading validates everything the schema can say (types, enums and ranges in each dataclass's
`__post_init__`) before any model is loaded, and turns every problem into one `ConfigError` that names
the file and the key. A config given by name (`stage1_tiny`) is one of the configs shipped with the
package; `${resource:...}` inside a config points at a shipped file.
"""

from __future__ import annotations

import codecs
import difflib
import math
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import SASLMError
from .paths import CONFIG_DIR, resource

T = TypeVar("T")

#: `dtype:` values of the configs and `--dtype` of the CLI.
TORCH_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class ConfigError(SASLMError, ValueError):
    """A config file, override or argument that does not fit the schema; the message names the key."""


def _resource(relative: str) -> str:
    return str(resource(relative))


if not OmegaConf.has_resolver("resource"):
    OmegaConf.register_resolver("resource", _resource)


def torch_dtype(name: str) -> torch.dtype:
    if name not in TORCH_DTYPES:
        raise ConfigError(f"dtype {name!r} is not one of {', '.join(TORCH_DTYPES)}")
    return TORCH_DTYPES[name]


def did_you_mean(value: Any, allowed) -> str:
    """`; did you mean 'x'?` for the allowed string closest to a misspelt `value`, else ``."""
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1) if isinstance(value, str) else []
    return f"; did you mean {close[0]!r}?" if close else ""


def check_choice(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}{did_you_mean(value, allowed)}")


def check_range(key: str, value: float | int | None, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    """`value` is a finite number within [low, high] (open ends where asked); None only if `optional`."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}: {value!r} is not a finite number")
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(f"{key}: {value} must be {'>' if low_open else '>='} {low}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ConfigError(f"{key}: {value} must be {'<' if high_open else '<='} {high}")


def read_utf8(path: Path, error: type[SASLMError] = ConfigError) -> str:
    """The text of a UTF-8 file (a BOM is accepted); otherwise `error` naming the file, line and byte offset."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # exc.start counts from after the BOM
        offset = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        line = data.count(b"\n", 0, offset) + 1
        raise error(f"{path}:{line}: not UTF-8 (byte {offset}); save the file as UTF-8") from exc


def yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """`file:line:column: not valid YAML (problem; context)` from a YAML exception's marks (1-based)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem += f"; {context} at line {context_mark.line + 1}, column {context_mark.column + 1}"
    return f"{where}: not valid YAML ({problem})"


def config_path(name_or_path: str | Path) -> Path:
    """A config file: a path, or the name of a config shipped with the package (`stage1_tiny`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if path.suffix == "" and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"{path}: config file not found (shipped configs: {names})")


def load_config(schema: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """YAML file + dotted overrides (`train.max_steps=10`) → a validated instance of `schema`."""
    path = config_path(path)
    text = read_utf8(path)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(text),
                                 OmegaConf.from_dotlist(overrides or []))
        return OmegaConf.to_object(merged)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from exc
    except OmegaConfBaseException as exc:
        # OmegaConf appends `full_key: ... object_type=...` lines to its message; the key leads instead.
        msg = (getattr(exc, "msg", None) or str(exc)).splitlines()[0].strip()
        key = getattr(exc, "full_key", None)
        raise ConfigError(f"{path}: {key}: {msg}" if key else f"{path}: {msg}") from exc
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from exc


def dump_config(cfg, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.structured(cfg), str(path))
