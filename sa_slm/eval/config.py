"""Eval config: YAML in configs/eval_*.yaml, schema here (`sa-slm eval --config ... [key=value ...]`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from omegaconf import MISSING

from ..bridge import PARAMETER_FREE_MODES, IntentBridgeConfig
from ..config import TORCH_DTYPES, ConfigError, check_choice, check_range
from ..talker.sampling import SamplingConfig

REPLY_MODES = ("given", "generated")
SOURCES = ("model", "reference")


@dataclass
class ModelEntry:
    """One column of the comparison: a checkpoint (or preset) and how it speaks."""

    name: str = "base"  # column name in the summary and folder name of its wavs
    path: str = "tiny"  # preset (tiny, random-3b, random-7b), local folder or hub id
    source: str = "model"  # model: the checkpoint speaks | reference: the manifest's reply_audio (ground truth)
    mode: str | None = None  # null: the bridge as trained | add: the stock `h + e` path | text: e only
    bridge: IntentBridgeConfig | None = None  # replace the checkpoint's bridge (e.g. compare conditioning modes)
    speaker: str | None = None  # Token2Wav speaker for items that name none

    def __post_init__(self) -> None:
        check_choice(f"models[{self.name}].source", self.source, SOURCES)
        if self.mode is not None:
            check_choice(f"models[{self.name}].mode", self.mode, PARAMETER_FREE_MODES)


@dataclass
class EvalConfig:
    manifest: str = MISSING  # our JSONL manifest (see sa_slm/data/manifest.py)
    output_dir: str = "outputs/eval"
    models: list[ModelEntry] = field(default_factory=lambda: [ModelEntry()])
    reply: str = "given"  # given: speak the manifest's reply_text | generated: the Thinker answers
    asr: str | None = "pocketsphinx"  # WER recogniser: model | pocketsphinx | whisper:<id> | funasr:<model> | null
    critic: str | None = "self"  # rubric critic: self (each model judges itself) | a checkpoint | null (off)
    rubric: str = "expressive"
    emotion_model: str | None = None  # local emotion2vec folder for EmoAlign (needs the funasr extra)
    emotion_key: str = "emotion"  # manifest label holding each item's target emotion
    device: str | None = None  # cpu | cuda | cuda:<index> | mps ...; default: cuda when available
    dtype: str = "fp32"
    seed: int = 0  # Talker sampling and Token2Wav noise (the same for every item and model)
    batch_size: int = 4  # prompts per batched generation call
    max_items: int | None = None  # evaluate the first N manifest lines only
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # max_new_codes null: the model's own
    f0_items: int = 3  # items per model whose F0 contours the report plots
    # Training curves for the report: a name per stage run -> its TensorBoard folder, e.g.
    # {stage1: outputs/stage1_3b/checkpoints/runs, stage3: outputs/stage3_3b/checkpoints/runs}
    training_logs: dict[str, str] = field(default_factory=dict)
    resume: bool = True  # keep finished (model, item) rows of an earlier run in output_dir

    def __post_init__(self) -> None:
        check_choice("reply", self.reply, REPLY_MODES)
        check_choice("dtype", self.dtype, TORCH_DTYPES)
        if self.device is not None:
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError) as exc:
                raise ConfigError(f"device: {self.device!r} is not a torch device ({exc}); use e.g. cpu, "
                                  "cuda, cuda:1, mps, or null for cuda when available") from exc
        check_range("batch_size", self.batch_size, 1)
        check_range("max_items", self.max_items, 1, optional=True)
        check_range("f0_items", self.f0_items, 0)
        names = [m.name for m in self.models]
        if not names:
            raise ConfigError("models is empty: list at least one {name, path}")
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"model names must be unique (they name columns and folders): "
                              f"{', '.join(map(repr, repeated))} repeated in {names}")
