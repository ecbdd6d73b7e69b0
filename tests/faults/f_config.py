"""Stage configs and rubrics: every bad file, key or value is one `error:` line naming it, before any model
loads (finding 7)."""

from __future__ import annotations

from pathlib import Path

from faults import Fault, recipe
from sa_slm.paths import RUBRIC_DIR

RUBRIC = (RUBRIC_DIR / "expressive.yaml").read_bytes()
SHIPPED = {0: "stage0_tiny", 1: "stage1_tiny", 3: "stage3_tiny"}


def _stage(stage: int, *overrides: str):
    """A shipped tiny config of `stage` with `overrides` (which may use {tmp}), output under the tmp folder."""
    def setup(tmp: Path):
        (tmp / "empty").mkdir()
        return recipe(stage), ["--config", SHIPPED[stage], f"output_dir={tmp}/out",
                               *[o.format(tmp=tmp) for o in overrides]]
    return setup


def _config_file(stage: int, text: bytes):
    def setup(tmp: Path):
        (tmp / "cfg.yaml").write_bytes(text)
        return recipe(stage), ["--config", str(tmp / "cfg.yaml"), f"output_dir={tmp}/out"]
    return setup


def _rubric(old: bytes, new: bytes, append: bytes = b""):
    """Stage 3 with the shipped rubric edited (`old` → `new`, then `append`)."""
    assert old in RUBRIC

    def setup(tmp: Path):
        (tmp / "r.yaml").write_bytes(RUBRIC.replace(old, new, 1) + append)
        return recipe(3), ["--config", SHIPPED[3], f"output_dir={tmp}/out", f"rubric={tmp}/r.yaml"]
    return setup


def _texts_file(tmp: Path):
    (tmp / "texts.txt").write_bytes(b"Hello there.\nCaf\xe9 au lait.\n")
    return recipe(0), ["--config", SHIPPED[0], f"output_dir={tmp}/out", f"bootstrap.texts_file={tmp}/texts.txt"]


FAULTS = [
    Fault(7, "stage1: config YAML syntax error", _config_file(1, b"train_manifest: m.jsonl\nbridge: {mode: add\n"),
          r"cfg\.yaml:3:1: not valid YAML \(did not find expected ',' or '\}'"),
    Fault(7, "stage1: config not UTF-8", _config_file(1, b"train_manifest: caf\xe9.jsonl\n"),
          r"cfg\.yaml:1: not UTF-8 \(byte 19\)"),
    Fault(7, "stage1: bridge.mode unknown", _stage(1, "bridge.mode=film"), r"bridge\.mode: unknown intent-bridge mode 'film'"),
    Fault(7, "stage1: dtype unknown", _stage(1, "dtype=bf61"), r"dtype: 'bf61' is not one of .*did you mean 'bf16'"),
    Fault(7, "stage1: scheduler unknown", _stage(1, "train.lr_scheduler_type=cosin"),
          r"train\.lr_scheduler_type: 'cosin' is not one of .*did you mean 'cosine'"),
    Fault(7, "stage1: DeepSpeed JSON missing", _stage(1, "train.deepspeed={tmp}/ds.json"),
          r"train\.deepspeed: .*ds\.json not found"),
    Fault(7, "stage1: learning rate not a number", _stage(1, "train.learning_rate=abc"),
          r"train\.learning_rate: Value 'abc' of type 'str' could not be converted to Float"),
    Fault(7, "stage1: misspelt key", _stage(1, "train.lerning_rate=0.1"),
          r"train\.lerning_rate: Key 'lerning_rate' not in 'TrainSection'\. Did you mean: 'learning_rate'"),
    Fault(7, "stage1: model folder missing", _stage(1, "model={tmp}/policy"), r"model .*/policy: model folder not found"),
    Fault(7, "stage1: model folder empty", _stage(1, "model={tmp}/empty"), r"model .*/empty: the folder is empty"),
    Fault(7, "stage3: model folder missing", _stage(3, "model={tmp}/policy"), r"model .*/policy: model folder not found"),
    Fault(7, "stage3: critic_model folder missing", _stage(3, "critic_model={tmp}/critic"),
          r"critic_model .*/critic: model folder not found"),
    Fault(7, "stage3: sampling temperature -1", _stage(3, "sampling.temperature=-1"), r"sampling\.temperature: -1"),
    Fault(7, "stage3: sampling top_p 1.5", _stage(3, "sampling.top_p=1.5"), r"sampling\.top_p: 1\.5"),
    Fault(7, "stage3: ASR backend unknown", _stage(3, "wer_gate.asr=kaldi"), r"wer_gate\.asr: unknown ASR backend 'kaldi'"),
    Fault(7, "stage3: prompts manifest missing", _stage(3, "prompts_manifest={tmp}/prompts.jsonl"),
          r"prompts\.jsonl: manifest not found"),
    Fault(7, "stage3: rubric weight .nan", _rubric(b"weight: 1.0", b"weight: .nan"),
          r"r\.yaml: 'dimensions\[0\]\.weight' is nan; give a finite number > 0"),
    Fault(7, "stage3: rubric weight not a number", _rubric(b"weight: 1.0", b"weight: heavy"),
          r"r\.yaml: 'dimensions\[0\]\.weight' is 'heavy'"),
    Fault(7, "stage3: rubric template unbalanced brace", _rubric(b"{reply_text}", b"{reply_text"),
          r"r\.yaml: 'instance_rubric\.prompt' is not a valid template"),
    Fault(7, "stage3: rubric template positional {}", _rubric(b"Dimension: {dimension}", b"Dimension: {}"),
          r"r\.yaml: 'question' has a positional placeholder '\{\}'"),
    Fault(7, "stage3: rubric key misspelt", _rubric(b"weight: 1.0", b"weigth: 1.0"),
          r"r\.yaml: 'dimensions\[0\]' has unknown key 'weigth'.*did you mean 'weight'"),
    Fault(7, "stage3: rubric not UTF-8", _rubric(b"name: expressive", b"name: caf\xe9"), r"r\.yaml:3: not UTF-8"),
    Fault(7, "stage3: rubric YAML syntax error", _rubric(b"", b"", b"extra: [\n"), r"r\.yaml:\d+:1: not valid YAML"),
    Fault(7, "stage0: model folder missing", _stage(0, "model={tmp}/policy"), r"model .*/policy: model folder not found"),
    Fault(7, "stage0: texts file not UTF-8", _texts_file, r"texts\.txt:2: not UTF-8 \(byte 16\)"),
    Fault(7, "stage0: no loss weighted", _stage(0, "code_loss_weight=0", "flow_matching_weight=0"),
          r"code_loss_weight and flow_matching_weight are both 0"),
    Fault(7, "stage0: code loss weight negative", _stage(0, "code_loss_weight=-1"), r"code_loss_weight: -1"),
]
