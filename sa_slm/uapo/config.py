"""Stage-3 config: YAML in configs/stage3_*.yaml, schema here."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from ..bridge import IntentBridgeConfig
from ..config import TORCH_DTYPES, check_choice, check_range
from ..data.audit import ON_BAD_ITEM
from ..rewards import RewardSpec, WERGateSection
from ..talker.sampling import SamplingConfig
from ..training.config import TrainSection


@dataclass
class UAPOConfig:
    model: str = "tiny"  # the policy: usually the stage-2 output folder
    dtype: str = "fp32"  # fp32 | bf16 | fp16 (Token2Wav always runs in fp32)
    output_dir: str = "outputs/stage3"
    seed: int = 0
    prompts_manifest: str = MISSING  # dialogue contexts (+ reply_text, else the Thinker answers)
    on_bad_item: str = "skip"  # skip | error: prompts the data audit finds bad (undecodable audio, bad lines)
    bridge: IntentBridgeConfig | None = None  # null: keep the checkpoint's bridge
    num_samples: int = 32  # K rollouts per prompt (paper: 32)
    beta: float = 0.1  # UAPO inverse temperature on the implicit reward r = log pi - log pi_ref
    margin_weighting: bool = False  # weight pairs by |u - u_anchor|
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec()])  # the utility's weighted rewards
    wer_gate: WERGateSection = field(default_factory=WERGateSection)
    rubric: str = "expressive"  # rubric of the `rubric` rewards: a shipped name or a YAML path
    critic_model: str | None = None  # null: the (frozen reference of the) policy judges itself
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_codes=600))
    max_reply_tokens: int = 256  # Thinker budget for prompts without reply_text
    audio_every: int = 50  # every N steps, write a few rollouts + the anchor under <output_dir>/checkpoints/rollout_audio
    audio_clips: int = 2
    train: TrainSection = field(default_factory=TrainSection)

    def __post_init__(self) -> None:
        check_choice("dtype", self.dtype, TORCH_DTYPES)
        check_choice("on_bad_item", self.on_bad_item, ON_BAD_ITEM)
        check_range("num_samples", self.num_samples, 1)
        check_range("beta", self.beta, 0.0, low_open=True)
        check_range("max_reply_tokens", self.max_reply_tokens, 1)
        check_range("audio_every", self.audio_every, 0)
        check_range("audio_clips", self.audio_clips, 0)
