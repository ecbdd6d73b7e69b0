"""Stage-3 config: YAML in configs/stage3_*.yaml, schema here."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sft.config import BridgeSection
from ..training.config import TrainSection


@dataclass
class UAPOConfig:
    model: str = "tiny"  # the policy: usually the stage-2 output folder
    dtype: str = "fp32"
    output_dir: str = "outputs/stage3"
    seed: int = 0
    prompts_manifest: str = "data/tiny_corpus/manifest.jsonl"  # dialogue contexts (+ reply_text, else the Thinker answers)
    bridge: BridgeSection | None = None  # None: keep the model's own bridge settings
    num_rollouts: int = 32  # K rollouts per prompt (paper: 32)
    beta: float = 0.1  # UAPO inverse temperature on the implicit reward
    margin_weighting: bool = False  # weight pairs by |u - u_anchor|
    wer_threshold: float | None = 0.2  # utility 0 above this WER; null disables the gate
    f0_variance_weight: float = 0.0  # mix the objective F0-variance reward into the utility (0..1)
    emotion_model: str | None = None  # local emotion2vec folder (funasr extra): external emotion reward
    emotion_reward_weight: float = 0.0  # mix P(target emotion) from emotion_model into the utility (0..1)
    emotion_key: str = "emotion"  # manifest label with each prompt's target emotion
    asr: str = "model"  # WER-gate recogniser: model | pocketsphinx | whisper:<path or id> | funasr:<model>
    rubric: str = "expressive"
    critic_model: str | None = None  # None: the policy judges itself; else another checkpoint (frozen)
    temperature: float = 0.9
    top_k: int = 40
    top_p: float = 0.8
    max_codes: int = 600
    lr_speech: float = 1e-5
    audio_every: int = 50  # every N steps, write a few rollouts + the anchor under <output_dir>/checkpoints/rollout_audio
    audio_clips: int = 2
    train: TrainSection = field(default_factory=TrainSection)
