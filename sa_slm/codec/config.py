"""Stage-0 config: YAML in configs/stage0_*.yaml, schema here."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import TORCH_DTYPES, ConfigError, check_choice, check_range
from ..data.audit import ON_BAD_ITEM
from .encoder import MEL_NORMS
from ..talker.sampling import SamplingConfig
from ..training.config import TrainSection


@dataclass
class BootstrapSection:
    texts_file: str | None = None  # one text per line; None: built-in sentences + the real-speech manifest's replies
    speakers: list[str] | None = None  # None: every speaker of the base model
    num_samples: int = 4  # code samples per (text, speaker)
    texts_per_batch: int = 8
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_codes=600))

    def __post_init__(self) -> None:
        check_range("bootstrap.num_samples", self.num_samples, 1)
        check_range("bootstrap.texts_per_batch", self.texts_per_batch, 1)
        if not self.sampling.do_sample:
            raise ConfigError("bootstrap.sampling.do_sample must be true: greedy decoding gives one pair per text")


@dataclass
class TokenizerSection:
    hidden_size: int = 512
    num_layers: int = 6
    num_heads: int = 8
    dropout: float = 0.1
    max_codes: int = 1500  # longest input the tokenizer encodes in one piece, in codes (1500 = 30 s)
    # level: per-frame LayerNorm plus the frame's loudness as one more channel; frame: the LayerNorm alone,
    # which removes the loudness (codec.encoder.MEL_NORMS)
    mel_norm: str = "level"

    def __post_init__(self) -> None:
        check_choice("tokenizer.mel_norm", self.mel_norm, MEL_NORMS)
        for key in ("hidden_size", "num_layers", "num_heads", "max_codes"):
            check_range(f"tokenizer.{key}", getattr(self, key), 1)
        check_range("tokenizer.dropout", self.dropout, 0.0, 1.0, high_open=True)
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"tokenizer.hidden_size ({self.hidden_size}) must be divisible by num_heads "
                              f"({self.num_heads})")


@dataclass
class Stage0Config:
    model: str = "tiny"  # base model: preset, local folder or hub id
    dtype: str = "fp32"  # Thinker/Talker dtype for bootstrapping (Token2Wav stays fp32)
    output_dir: str = "outputs/stage0"
    seed: int = 0
    bootstrap: BootstrapSection = field(default_factory=BootstrapSection)
    tokenizer: TokenizerSection = field(default_factory=TokenizerSection)
    heldout_fraction: float = 0.125  # fraction of texts held out for code accuracy
    real_speech_manifest: str | None = None  # round-trip metrics on its reply_audio (and bootstrap texts)
    round_trip_clips: int = 8
    # Weight of the code cross-entropy on the self-bootstrapped pairs. 0 trains on real speech through the
    # flow-matching loss alone (the pairs are still made, for the held-out metrics): for a base model whose
    # own speech is noise (a random-weight stand-in), whose codes teach nothing about speech.
    code_loss_weight: float = 1.0
    flow_matching_weight: float = 0.0  # > 0: add the frozen DiT's flow-matching loss on real speech
    flow_matching_manifest: str | None = None  # real speech for it (default: real_speech_manifest)
    flow_matching_speaker: str | None = None  # speaker vector fed to the DiT (default: the model's default)
    on_bad_item: str = "skip"  # skip | error: items of the real-speech manifests the data audit finds bad
    train: TrainSection = field(default_factory=TrainSection)

    def __post_init__(self) -> None:
        check_choice("dtype", self.dtype, TORCH_DTYPES)
        check_choice("on_bad_item", self.on_bad_item, ON_BAD_ITEM)
        check_range("heldout_fraction", self.heldout_fraction, 0.0, 1.0, high_open=True)
        check_range("round_trip_clips", self.round_trip_clips, 0)
        check_range("flow_matching_weight", self.flow_matching_weight, 0.0)
        check_range("code_loss_weight", self.code_loss_weight, 0.0)
        if self.code_loss_weight == 0 and self.flow_matching_weight == 0:
            raise ConfigError("code_loss_weight and flow_matching_weight are both 0: nothing would train the "
                              "tokenizer; give one of them a positive weight")
        if self.flow_matching_weight > 0 and not (self.flow_matching_manifest or self.real_speech_manifest):
            raise ConfigError("flow_matching_weight > 0 needs real speech: set flow_matching_manifest "
                              "(or real_speech_manifest)")
