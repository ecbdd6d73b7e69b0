"""Rubric YAML files (rubrics/*.yaml): schema and validation with clear errors."""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import did_you_mean, read_utf8, yaml_error
from ..errors import SASLMError
from ..paths import RUBRIC_DIR

#: The placeholders each template may use.
QUESTION_FIELDS = {"reply_text", "instance_rubric", "dimension", "description"}
INSTANCE_FIELDS = {"reply_text"}


class RubricError(SASLMError, ValueError):
    """A rubric file that does not fit the schema; the message names the file and the field."""


@dataclass(frozen=True)
class Dimension:
    name: str
    description: str
    weight: float = 1.0


@dataclass(frozen=True)
class ScalePoint:
    answer: str
    value: float
    meaning: str = ""


@dataclass(frozen=True)
class Rubric:
    name: str
    system_prompt: str
    instance_prompt: str
    instance_max_new_tokens: int
    scale: tuple[ScalePoint, ...]
    question: str
    dimensions: tuple[Dimension, ...]
    source: str = ""

    def answer_token_ids(self, tokenizer) -> list[int]:
        """Token id of each answer; every answer must be exactly one token of this tokenizer."""
        ids = []
        for point in self.scale:
            tokens = tokenizer(point.answer, add_special_tokens=False)["input_ids"]
            if len(tokens) != 1:
                raise RubricError(f"{self.source}: scale answer {point.answer!r} is {len(tokens)} tokens for this "
                                  "model's tokenizer; answers must be single tokens (e.g. digits)")
            ids.append(tokens[0])
        return ids


#: The keys a rubric file may have (top level, `instance_rubric`, each scale point, each dimension).
TOP_KEYS = ("name", "system_prompt", "instance_rubric", "scale", "question", "dimensions")
INSTANCE_KEYS = ("prompt", "max_new_tokens")
SCALE_KEYS = ("answer", "value", "meaning")
DIMENSION_KEYS = ("name", "description", "weight")


def _template_fields(where: str, key: str, template: str, allowed: set[str]) -> None:
    """Check a `str.format` template: balanced braces, named placeholders only, each one in `allowed`."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RubricError(f"{where}: '{key}' is not a valid template ({exc}); write '{{{{' or '}}}}' for a "
                          "literal brace") from exc
    names = [name for _, name, _, _ in parsed if name is not None]
    positional = [name for name in names if name == "" or name.isdigit()]
    if positional:
        raise RubricError(f"{where}: '{key}' has a positional placeholder '{{{positional[0]}}}'; use a named one: "
                          + ", ".join(f"{{{a}}}" for a in sorted(allowed)))
    unknown = set(names) - allowed
    if unknown:
        raise RubricError(f"{where}: '{key}' uses unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _known_keys(where: str, obj: dict, allowed: tuple[str, ...], ctx: str) -> None:
    """A misspelt optional key would be ignored silently (a default used instead): name it and the closest."""
    for key in obj:
        if key not in allowed:
            raise RubricError(f"{where}: '{ctx}' has unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"
                              f"{did_you_mean(key, allowed)}")


def _positive(where: str, key: str, value, integer: bool = False) -> float:
    """A finite number > 0 (an integer >= 1 when `integer`); bools and strings are refused."""
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or not math.isfinite(value) or value <= 0:
        want = "an integer >= 1" if integer else "a finite number > 0"
        raise RubricError(f"{where}: '{key}' is {value!r}; give {want}")
    return value


def load_rubric(name_or_path: str | Path) -> Rubric:
    """A rubric by name (a shipped `rubrics/<name>.yaml`) or by path, validated."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RUBRIC_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in RUBRIC_DIR.glob("*.yaml")))
        raise RubricError(f"{path}: rubric not found (built-in rubrics: {available})")
    text = read_utf8(path, RubricError)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RubricError(yaml_error(path, exc)) from exc
    where = str(path)
    if not isinstance(raw, dict):
        raise RubricError(f"{where}: a rubric is a mapping of keys ({', '.join(TOP_KEYS)}), "
                          f"got {'an empty file' if raw is None else 'a ' + type(raw).__name__}")
    _known_keys(where, raw, TOP_KEYS, "(top level)")

    def need(obj, key, kind, ctx):
        if not isinstance(obj, dict) or key not in obj:
            raise RubricError(f"{where}: missing '{ctx}{key}'")
        value = obj[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise RubricError(f"{where}: '{ctx}{key}' must be {getattr(kind, '__name__', kind)}")
        return value

    inst = need(raw, "instance_rubric", dict, "")
    _known_keys(where, inst, INSTANCE_KEYS, "instance_rubric")
    instance_prompt = need(inst, "prompt", str, "instance_rubric.")
    max_new_tokens = _positive(where, "instance_rubric.max_new_tokens", inst.get("max_new_tokens", 48), integer=True)
    question = need(raw, "question", str, "")
    _template_fields(where, "instance_rubric.prompt", instance_prompt, INSTANCE_FIELDS)
    _template_fields(where, "question", question, QUESTION_FIELDS)
    scale = []
    for i, point in enumerate(need(raw, "scale", list, "")):
        answer = need(point, "answer", str, f"scale[{i}].")
        _known_keys(where, point, SCALE_KEYS, f"scale[{i}]")
        value = need(point, "value", (int, float), f"scale[{i}].")
        if not 0.0 <= float(value) <= 1.0:
            raise RubricError(f"{where}: 'scale[{i}].value' is {value}; values must lie in [0, 1]")
        meaning = need(point, "meaning", str, f"scale[{i}].") if "meaning" in point else ""
        scale.append(ScalePoint(answer, float(value), meaning))
    if len(scale) < 2 or len({p.answer for p in scale}) != len(scale):
        raise RubricError(f"{where}: 'scale' needs at least two points with distinct answers")
    dims = []
    for i, d in enumerate(need(raw, "dimensions", list, "")):
        name = need(d, "name", str, f"dimensions[{i}].")
        _known_keys(where, d, DIMENSION_KEYS, f"dimensions[{i}]")
        weight = _positive(where, f"dimensions[{i}].weight", d.get("weight", 1.0))
        dims.append(Dimension(name, need(d, "description", str, f"dimensions[{i}]."), float(weight)))
    if not dims or len({d.name for d in dims}) != len(dims):
        raise RubricError(f"{where}: 'dimensions' needs at least one entry and distinct names")
    return Rubric(
        name=need(raw, "name", str, "") if "name" in raw else path.stem,
        system_prompt=need(raw, "system_prompt", str, ""),
        instance_prompt=instance_prompt,
        instance_max_new_tokens=int(max_new_tokens),
        scale=tuple(scale),
        question=question,
        dimensions=tuple(dims),
        source=where,
    )
