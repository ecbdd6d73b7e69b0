"""Hugging Face `Trainer` for stages 1–2: KL-weight schedule, per-group learning rates, every term logged."""

from __future__ import annotations

import torch

from ..bridge import kl_weight_at
from ..training.trainer_utils import LoggedTermsTrainer, grouped_optimizer
from .objective import sft_loss


class SFTTrainer(LoggedTermsTrainer):
    """compute_loss = sft_loss(model(**batch), batch, kl_weight(step), text_loss_weight), on the `model` the
    Trainer passes (the DeepSpeed engine, a PEFT wrapper, ...): nothing else holds the weights.

    Param groups: `speech` (Talker + bridge) at `args.learning_rate` and `llm` (Thinker layers/LoRA) at
    `llm_learning_rate`. The DeepSpeed configs carry no optimizer section, which would replace these
    groups with one.
    """

    def __init__(self, *args, param_groups: dict[str, list[torch.nn.Parameter]], llm_learning_rate: float,
                 kl_weight_max: float = 0.5, kl_weight_warmup: float = 0.1, text_loss_weight: float = 0.0,
                 reply_eos_id: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.param_groups, self.llm_learning_rate = param_groups, llm_learning_rate
        self.kl_weight_max, self.kl_weight_warmup = kl_weight_max, kl_weight_warmup
        self.text_loss_weight, self.reply_eos_id = text_loss_weight, reply_eos_id

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            self.optimizer = grouped_optimizer(self.args, model, [
                (self.param_groups["speech"], self.args.learning_rate),
                (self.param_groups["llm"], self.llm_learning_rate)])
        return self.optimizer

    def kl_weight(self) -> float:
        """The KL weight of the step being trained: `global_step` runs 0 .. max_steps - 1 inside
        `compute_loss`, so the schedule spans max_steps - 1 intervals and the last step gets the maximum."""
        return kl_weight_at(self.state.global_step, self.state.max_steps - 1, self.kl_weight_max,
                            self.kl_weight_warmup)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        kl_weight = self.kl_weight()
        out = model(**inputs, with_logprobs=False, with_text_logits=self.text_loss_weight > 0,
                    sample_latent=model.training)
        objective = sft_loss(out, inputs, kl_weight, self.text_loss_weight, self.reply_eos_id)
        self.record(model, kl_weight=kl_weight, **objective.terms)
        return (objective.loss, objective.terms) if return_outputs else objective.loss
