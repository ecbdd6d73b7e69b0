"""Stage-1/2 config: YAML in configs/stage{1,2}_*.yaml, schema here."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from ..bridge import IntentBridgeConfig
from ..config import TORCH_DTYPES, ConfigError, check_choice, check_range
from ..data.audit import ON_BAD_ITEM
from ..training.config import TrainSection


@dataclass
class LoraSection:
    enabled: bool = False  # stage 1 option: LoRA adapters on the Thinker LLM (trained at llm_learning_rate)
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])

    def __post_init__(self) -> None:
        check_range("lora.r", self.r, 1)
        check_range("lora.alpha", self.alpha, 0, low_open=True)
        check_range("lora.dropout", self.dropout, 0.0, 1.0, high_open=True)


@dataclass
class SFTConfig:
    stage: int = 1  # 1 | 2 (recorded in metrics.json; what trains is set by the keys below)
    model: str = "tiny"  # preset, local folder (e.g. the stage-1 output for stage 2) or hub id
    dtype: str = "fp32"  # fp32 | bf16 | fp16
    output_dir: str = "outputs/stage1"
    seed: int = 0
    train_manifest: str = MISSING  # needs reply_codes (stage 0: sa-slm tokenize)
    eval_manifest: str | None = None
    on_bad_item: str = "skip"  # skip | error: items the data audit finds bad (undecodable audio, bad lines)
    bridge: IntentBridgeConfig | None = None  # null: keep the checkpoint's bridge (a stock checkpoint: mode add)
    kl_weight_max: float = 0.5  # the paper's beta: weight of the bridge KL after its ramp
    kl_weight_warmup: float = 0.1  # fraction of steps with KL weight 0
    text_loss_weight: float = 0.0  # stage 2: 1.0 (reply-text CE of the Thinker)
    train_talker: bool = True
    train_bridge: bool = True
    thinker_last_layers: int = 0  # stage 2: 1
    lora: LoraSection = field(default_factory=LoraSection)  # merged into the Thinker at the final save
    llm_learning_rate: float = 1e-6  # Thinker layers / LoRA (the Talker + bridge use train.learning_rate)
    train: TrainSection = field(default_factory=TrainSection)

    def __post_init__(self) -> None:
        check_choice("stage", self.stage, (1, 2))
        check_choice("dtype", self.dtype, TORCH_DTYPES)
        check_choice("on_bad_item", self.on_bad_item, ON_BAD_ITEM)
        check_range("kl_weight_max", self.kl_weight_max, 0.0)
        check_range("kl_weight_warmup", self.kl_weight_warmup, 0.0, 1.0)
        check_range("text_loss_weight", self.text_loss_weight, 0.0)
        check_range("thinker_last_layers", self.thinker_last_layers, 0)
        check_range("llm_learning_rate", self.llm_learning_rate, 0.0, low_open=True)
        if not (self.train_talker or self.train_bridge or self.thinker_last_layers or self.lora.enabled):
            raise ConfigError("nothing to train: enable train_talker, train_bridge, thinker_last_layers or lora")
        if self.lora.enabled and self.train.deepspeed_stage == 3:
            raise ConfigError("lora.enabled: Thinker LoRA is merged into the weights at the end, which ZeRO-3's "
                              "partitioned weights do not allow; use ZeRO-2 (${resource:configs/deepspeed/zero2.json})")
