"""Stage-1/2 config: YAML in configs/stage{1,2}_*.yaml, schema here."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..training.config import TrainSection


@dataclass
class BridgeSection:
    mode: str = "vib_adaln"  # text | add | adaln_h | vib_adaln
    latent_dim: int = 64
    vib_hidden: int = 256
    prior: str = "ou"  # ou | iid
    alpha: float = 0.95
    sigma_p: float = 0.5
    acoustic_context: str = "none"  # none | audio_tower


@dataclass
class LoraSection:
    enabled: bool = False  # stage 1 option: LoRA adapters on the Thinker LLM (trained at lr_llm)
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])


@dataclass
class SFTConfig:
    stage: int = 1
    model: str = "tiny"  # preset, local folder (e.g. the stage-1 output for stage 2) or hub id
    dtype: str = "fp32"
    output_dir: str = "outputs/stage1"
    seed: int = 0
    train_manifest: str = "data/tiny_corpus/manifest_codes.jsonl"  # needs reply_codes (stage 0: sa-slm tokenize)
    eval_manifest: str | None = None
    bridge: BridgeSection = field(default_factory=BridgeSection)
    beta_max: float = 0.5  # KL weight after the ramp
    beta_warmup: float = 0.1  # fraction of steps with beta = 0
    text_loss_weight: float = 0.0  # stage 2: 1.0 (reply-text CE of the Thinker)
    train_talker: bool = True
    train_bridge: bool = True
    thinker_last_layers: int = 0  # stage 2: 1
    lora: LoraSection = field(default_factory=LoraSection)  # merged into the Thinker at the final save
    lr_speech: float = 1e-5  # Talker + bridge
    lr_llm: float = 1e-6  # Thinker layers / LoRA
    train: TrainSection = field(default_factory=TrainSection)
