"""Stage-0 config: YAML in configs/stage0_*.yaml, schema here."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..training.config import TrainSection


@dataclass
class BootstrapSection:
    texts_file: str | None = None  # one text per line; None: built-in sentences + the real-speech manifest's replies
    speakers: list[str] | None = None  # None: every speaker of the base model
    samples_per_text: int = 4
    texts_per_batch: int = 8
    max_codes: int = 600  # Talker budget per clip (50 codes/s)
    temperature: float = 0.9
    top_k: int = 40
    top_p: float = 0.8


@dataclass
class TokenizerSection:
    hidden_size: int = 512
    num_layers: int = 6
    num_heads: int = 8
    dropout: float = 0.1
    max_codes: int = 1500  # 30 s


@dataclass
class Stage0Config:
    model: str = "tiny"  # base model: preset, local folder or hub id
    dtype: str = "fp32"  # Thinker/Talker dtype for bootstrapping (Token2Wav stays fp32)
    output_dir: str = "outputs/stage0"
    seed: int = 0
    bootstrap: BootstrapSection = field(default_factory=BootstrapSection)
    tokenizer: TokenizerSection = field(default_factory=TokenizerSection)
    heldout_fraction: float = 0.125  # fraction of texts held out for code accuracy
    real_speech_manifest: str | None = "data/tiny_corpus/manifest.jsonl"  # round-trip metrics on reply_audio
    round_trip_clips: int = 8
    flow_matching_weight: float = 0.0  # > 0: add the frozen DiT's flow-matching loss on real speech
    flow_matching_manifest: str | None = None  # real speech for it (default: real_speech_manifest)
    flow_matching_speaker: str | None = None  # speaker vector fed to the DiT (default: the model's default)
    train: TrainSection = field(default_factory=TrainSection)
