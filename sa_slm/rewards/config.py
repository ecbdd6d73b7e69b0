"""The `rewards:` list of a stage-3 config and the `wer_gate:` section: schema, checks, construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..asr import check_asr_spec
from ..config import ConfigError, check_range
from ..critic import RubricCritic
from ..critic.rubric import Rubric
from ..errors import SASLMError
from .base import Reward
from .builtin import (BUILTIN_ARGS, EmotionModelReward, F0VarianceReward, FunctionReward, RubricReward,
                      import_function)


@dataclass
class RewardSpec:
    """One reward of the utility: `function` is a built-in (rubric, f0_variance, emotion_model) or a user
    function `package.module:function`; `args` are its keyword arguments."""

    name: str = "critic"  # unique; logged as reward_<name>
    function: str = "rubric"
    weight: float = 1.0  # share of the utility: weight / sum of the weights of the rewards that apply
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"rewards: name {self.name!r} must be letters, digits and underscores")
        check_range(f"rewards[{self.name}].weight", self.weight, 0.0)
        if self.function not in BUILTIN_ARGS and ":" not in self.function:
            raise ConfigError(f"rewards[{self.name}].function: {self.function!r} is neither a built-in reward "
                              f"({', '.join(BUILTIN_ARGS)}) nor an import path 'package.module:function'")


@dataclass
class WERGateSection:
    """Utility 0 for a rollout whose transcript's WER against the reply text exceeds `threshold`."""

    threshold: float | None = 0.2  # null: no gate
    asr: str = "model"  # model | pocketsphinx | whisper:<path or id> | funasr:<model>

    def __post_init__(self) -> None:
        check_range("wer_gate.threshold", self.threshold, 0.0, optional=True)
        try:
            check_asr_spec(self.asr)
        except SASLMError as exc:
            raise ConfigError(f"wer_gate.asr: {exc}") from exc


def builtin_args(spec: RewardSpec) -> Any:
    """The validated arguments of a built-in reward (unknown keys and wrong types are errors)."""
    schema = BUILTIN_ARGS[spec.function]
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), spec.args))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"rewards[{spec.name}].args: {' '.join(str(exc).split())}") from exc


def check_rewards(specs: list[RewardSpec], rubric: Rubric) -> None:
    """Everything that can be checked before a model loads: unique names, weights, arguments, rubric
    dimensions, user functions importable."""
    if not specs:
        raise ConfigError("rewards: give at least one reward (e.g. {name: critic, function: rubric})")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"rewards: names must be unique, got {names}")
    if not sum(s.weight for s in specs) > 0 or not all(math.isfinite(s.weight) for s in specs):
        raise ConfigError("rewards: the weights must be finite and sum to more than 0")
    known = [d.name for d in rubric.dimensions]
    for spec in specs:
        if spec.function in BUILTIN_ARGS:
            args = builtin_args(spec)
            if spec.function == "rubric" and args.dimensions:
                unknown = sorted(set(args.dimensions) - set(known))
                if unknown:
                    raise ConfigError(f"rewards[{spec.name}].args.dimensions: {unknown} not in rubric "
                                      f"{rubric.name} ({', '.join(known)})")
            if spec.function == "emotion_model" and not (args.model_dir and Path(args.model_dir).is_dir()):
                raise ConfigError(f"rewards[{spec.name}].args.model_dir: {args.model_dir!r} is not a folder; give "
                                  "a local emotion2vec checkpoint (pip install 'sa-slm[funasr]')")
        else:
            try:
                import_function(spec.function)
            except ValueError as exc:
                raise ConfigError(f"rewards[{spec.name}].function: {exc}") from exc


def build_rewards(specs: list[RewardSpec], critic: RubricCritic | None) -> list[Reward]:
    """The reward objects of `specs` (rubric rewards score with `critic`)."""
    rewards: list[Reward] = []
    for spec in specs:
        if spec.function == "rubric":
            if critic is None:
                raise ConfigError(f"rewards[{spec.name}]: a rubric reward needs a critic model")
            rewards.append(RubricReward(spec.name, spec.weight, critic, **asdict(builtin_args(spec))))
        elif spec.function == "f0_variance":
            rewards.append(F0VarianceReward(spec.name, spec.weight, **asdict(builtin_args(spec))))
        elif spec.function == "emotion_model":
            try:
                rewards.append(EmotionModelReward(spec.name, spec.weight, **asdict(builtin_args(spec))))
            except ValueError as exc:
                raise ConfigError(f"rewards[{spec.name}]: {exc}") from exc
        else:
            rewards.append(FunctionReward(spec.name, spec.weight, import_function(spec.function), spec.args))
    return rewards
