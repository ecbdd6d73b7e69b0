"""Paper-mini settings: YAML in configs/paper_mini*.yaml, schema here.

Each stage section holds `key=value`-style overrides of a shipped tiny stage config (the paths the
driver owns, such as models, manifests and output folders, are set by the driver). Everything is
validated, stage configs included, before any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, check_choice, check_range
from ..talker.sampling import SamplingConfig
from .corpus import CorpusConfig

#: The paper's ablations: variant name → overrides of the full model's bridge (vib_adaln, OU prior,
#: acoustic context from the audio tower). `full` is the SA-SLM model.
VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "text": {"mode": "text"},
    "add": {"mode": "add"},
    "adaln_h": {"mode": "adaln_h"},
    "prior_iid": {"prior": "iid"},
    "no_context": {"acoustic_context": "none"},
}
#: Stage-3 critics: the model's own rubric critic, or the code-space style classifier as an oracle.
CRITICS = ("self", "oracle")


@dataclass
class EvalSection:
    heldout_sentences: int | None = None  # evaluate on the first N held-out sentences (None: all)
    rollouts_per_context: int = 2  # sampled replies per held-out context for code-space EmoAlign
    batch_size: int = 16  # contexts per batch
    seed: int = 1234  # rollout seeds: the same for every model (paired comparisons)
    listening_examples: int = 3  # held-out contexts decoded to audio for the report
    probe_folds: int = 5
    # Rollouts sample the model's own distribution. Qwen's defaults (top-p 0.8, top-k 40) never sample an end
    # of speech whose probability is spread over several steps, so every reply ran to the budget, and the
    # length is what carries most of a style through the tiny tokenizer. The budget (max_new_codes) is every
    # rollout's and the saved base model's default; the longest clip is ~130 codes.
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(
        temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, max_new_codes=160))

    def __post_init__(self) -> None:
        if self.sampling.max_new_codes is None:
            raise ConfigError("eval.sampling.max_new_codes: give the rollouts' code budget (e.g. 160)")
        check_range("eval.heldout_sentences", self.heldout_sentences, 2, optional=True)
        check_range("eval.rollouts_per_context", self.rollouts_per_context, 1)
        check_range("eval.batch_size", self.batch_size, 1)
        check_range("eval.listening_examples", self.listening_examples, 0)
        check_range("eval.probe_folds", self.probe_folds, 2)


@dataclass
class ClassifierSection:
    top_pairs: int = 16  # codes whose bigrams are features
    steps: int = 400

    def __post_init__(self) -> None:
        check_range("classifier.top_pairs", self.top_pairs, 0)
        check_range("classifier.steps", self.steps, 1)


@dataclass
class PaperMiniConfig:
    output_dir: str = "outputs/paper_mini"
    base_seed: int = 0  # the random tiny model every run starts from (the stand-in for a pretrained checkpoint)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds (data order, latent noise)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    critics: list[str] = field(default_factory=lambda: list(CRITICS))
    # Training jobs (a variant's stages 1-2, a critic's stage 3, and their measurements) run in this many
    # processes at once, the CPU threads shared among them; 1 runs them one after another in this process.
    workers: int = 2
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    stage0_texts: int = 32  # corpus sentences (train split) the random Talker speaks for stage-0 pairs
    stage0_real_clips: int = 64  # training reply clips for stage 0's real-speech objective and round trip
    stage0: dict[str, Any] = field(default_factory=dict)  # overrides of stage0_tiny
    stage1: dict[str, Any] = field(default_factory=dict)  # overrides of stage1_tiny
    stage2: dict[str, Any] = field(default_factory=dict)  # overrides of stage2_tiny
    stage3: dict[str, Any] = field(default_factory=dict)  # overrides of stage3_tiny
    classifier: ClassifierSection = field(default_factory=ClassifierSection)
    eval: EvalSection = field(default_factory=EvalSection)

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: {self.seeds} must be a non-empty list of distinct integers")
        if not self.variants or "full" not in self.variants:
            raise ConfigError(f"variants: {self.variants} must include 'full' (the model the other tables compare "
                              "against)")
        for v in self.variants:
            check_choice("variants", v, VARIANTS)
        for c in self.critics:
            check_choice("critics", c, CRITICS)
        check_range("workers", self.workers, 1)
        check_range("stage0_texts", self.stage0_texts, 1)
        check_range("stage0_real_clips", self.stage0_real_clips, 1)
