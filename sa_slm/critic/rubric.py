"""Rubric YAML files (rubrics/*.yaml): schema and validation with clear errors."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import SASLMError
from ..paths import RUBRIC_DIR
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


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_rubric(name_or_path: str | Path) -> Rubric:
    """A rubric by name (a shipped `rubrics/<name>.yaml`) or by path, validated."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RUBRIC_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in RUBRIC_DIR.glob("*.yaml")))
        raise RubricError(f"{path}: rubric not found (built-in rubrics: {available})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML ({exc})") from exc
    where = str(path)

    def need(obj, key, kind, ctx):
        if not isinstance(obj, dict) or key not in obj:
            raise RubricError(f"{where}: missing '{ctx}{key}'")
        value = obj[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise RubricError(f"{where}: '{ctx}{key}' must be {getattr(kind, '__name__', kind)}")
        return value

    inst = need(raw, "instance_rubric", dict, "")
    instance_prompt = need(inst, "prompt", str, "instance_rubric.")
    question = need(raw, "question", str, "")
    for template, allowed, key in ((instance_prompt, INSTANCE_FIELDS, "instance_rubric.prompt"),
                                   (question, QUESTION_FIELDS, "question")):
        unknown = _fields(template) - allowed
        if unknown:
            raise RubricError(f"{where}: '{key}' uses unknown placeholder(s) {sorted(unknown)}; "
                              f"allowed: {sorted(allowed)}")
    scale = []
    for i, point in enumerate(need(raw, "scale", list, "")):
        answer = need(point, "answer", str, f"scale[{i}].")
        value = need(point, "value", (int, float), f"scale[{i}].")
        if not 0.0 <= float(value) <= 1.0:
            raise RubricError(f"{where}: 'scale[{i}].value' is {value}; values must lie in [0, 1]")
        scale.append(ScalePoint(answer, float(value), str(point.get("meaning", ""))))
    if len(scale) < 2 or len({p.answer for p in scale}) != len(scale):
        raise RubricError(f"{where}: 'scale' needs at least two points with distinct answers")
    dims = []
    for i, d in enumerate(need(raw, "dimensions", list, "")):
        weight = float(d.get("weight", 1.0)) if isinstance(d, dict) else 1.0
        if weight <= 0:
            raise RubricError(f"{where}: 'dimensions[{i}].weight' must be positive")
        dims.append(Dimension(need(d, "name", str, f"dimensions[{i}]."), need(d, "description", str, f"dimensions[{i}]."),
                              weight))
    if not dims or len({d.name for d in dims}) != len(dims):
        raise RubricError(f"{where}: 'dimensions' needs at least one entry and distinct names")
    return Rubric(
        name=str(raw.get("name", path.stem)),
        system_prompt=need(raw, "system_prompt", str, ""),
        instance_prompt=instance_prompt,
        instance_max_new_tokens=int(inst.get("max_new_tokens", 48)),
        scale=tuple(scale),
        question=question,
        dimensions=tuple(dims),
        source=where,
    )
