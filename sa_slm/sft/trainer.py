"""Hugging Face `Trainer` for stages 1–2: beta schedule, per-group learning rates, every loss term logged."""

from __future__ import annotations

import torch

from ..bridge import beta_at
from ..training.trainer_utils import LoggedTermsTrainer, grouped_optimizer


class SFTTrainer(LoggedTermsTrainer):
    """compute_loss = model(**batch, kl_weight=beta(step), text_loss_weight=w)["loss"].

    Param groups: `speech` (Talker + bridge, lr_speech) and `llm` (Thinker layers/LoRA, lr_llm). The
    DeepSpeed configs carry no optimizer section, which would replace these groups with one.
    """

    def __init__(self, *args, param_groups: dict[str, list[torch.nn.Parameter]], lr_speech: float, lr_llm: float,
                 beta_max: float = 0.5, beta_warmup: float = 0.1, text_loss_weight: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.param_groups, self.lr_speech, self.lr_llm = param_groups, lr_speech, lr_llm
        self.beta_max, self.beta_warmup, self.text_loss_weight = beta_max, beta_warmup, text_loss_weight

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            self.optimizer = grouped_optimizer(self.args, model, [(self.param_groups["speech"], self.lr_speech),
                                                                  (self.param_groups["llm"], self.lr_llm)])
        return self.optimizer

    def beta(self) -> float:
        return beta_at(self.state.global_step, self.state.max_steps, self.beta_max, self.beta_warmup)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        beta = self.beta()
        out = model(**inputs, kl_weight=beta, text_loss_weight=self.text_loss_weight, sample_latent=model.training)
        self.record(model, beta=beta, **{name: value for name, value in out.items() if name != "loss"})
        return (out["loss"], out) if return_outputs else out["loss"]
