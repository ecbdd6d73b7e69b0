"""Eval config: YAML in configs/eval_*.yaml, schema here (`sa-slm eval --config ... [key=value ...]`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sft.config import BridgeSection


@dataclass
class ModelEntry:
    """One column of the comparison: a checkpoint (or preset) and how it speaks."""

    name: str = "base"  # column name in the summary and folder name of its wavs
    path: str = "tiny"  # preset (tiny, random-3b, random-7b), local folder or hub id
    source: str = "model"  # model: the checkpoint speaks | reference: the manifest's reply_audio (ground truth)
    use_bridge: bool = True  # False: the stock `h + e` reply part (A/B against the bridge)
    bridge: BridgeSection | None = None  # replace the checkpoint's bridge (e.g. compare conditioning modes)
    speaker: str | None = None  # Token2Wav speaker for items that name none


@dataclass
class EvalConfig:
    manifest: str = "data/tiny_corpus/manifest.jsonl"  # our JSONL manifest (see sa_slm/data/manifest.py)
    output_dir: str = "outputs/eval"
    models: list[ModelEntry] = field(default_factory=lambda: [ModelEntry()])
    reply: str = "given"  # given: speak the manifest's reply_text | generated: the Thinker answers
    asr: str | None = "pocketsphinx"  # WER recogniser: model | pocketsphinx | whisper:<id> | funasr:<model> | null
    critic: str | None = "self"  # rubric critic: self (each model judges itself) | a checkpoint | null (off)
    rubric: str = "expressive"
    emotion_model: str | None = None  # local emotion2vec folder for EmoAlign (needs the funasr extra)
    emotion_key: str = "emotion"  # manifest label holding each item's target emotion
    device: str | None = None  # default: cuda when available
    dtype: str = "fp32"
    seed: int = 0  # Talker sampling and Token2Wav noise (the same for every item and model)
    batch_size: int = 4  # prompts per batched generation call
    max_items: int | None = None  # evaluate the first N manifest lines only
    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 40
    top_p: float = 0.8
    repetition_penalty: float = 1.05
    max_codes: int | None = None  # default: the model's own limit
    f0_items: int = 3  # items per model whose F0 contours the report plots
    # Training curves for the report: a name per stage run -> its TensorBoard folder, e.g.
    # {stage1: outputs/stage1_3b/checkpoints/runs, stage3: outputs/stage3_3b/checkpoints/runs}
    training_logs: dict[str, str] = field(default_factory=dict)
    resume: bool = True  # keep finished (model, item) rows of an earlier run in output_dir
