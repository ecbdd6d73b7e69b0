"""Hugging Face `Trainer` for the speech tokenizer (DeepSpeed, checkpoints, resume and logging from it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..training.trainer_utils import LoggedTermsTrainer
from .flow_matching import flow_matching_loss
from .objectives import code_cross_entropy


@dataclass
class FlowMatchingObjective:
    """Frozen DiT + speaker vector used on real-speech items; `weight` scales the loss."""

    dit: nn.Module
    cond: torch.Tensor  # (1, enc_emb_dim)
    weight: float = 0.1

    def __post_init__(self) -> None:
        self.dit.eval().requires_grad_(False)


class SpeechTokenizerTrainer(LoggedTermsTrainer):
    """Cross-entropy on self-bootstrapped pairs (+ weighted flow matching on real speech).

    Logs `code_accuracy`, `ce_loss` and `fm_loss` next to the total loss.
    """

    def __init__(self, *args, flow_matching: FlowMatchingObjective | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flow_matching = flow_matching

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = model(inputs["audio"], inputs["audio_lengths"])
        ce, accuracy = code_cross_entropy(out["logits"], out["code_mask"], inputs["codes"], inputs["code_lengths"])
        loss = ce
        if inputs["is_real"].any() and self.flow_matching is not None:
            fm = self._flow_matching(model, out, inputs)
            loss = loss + self.flow_matching.weight * fm
            self.record(model, fm_loss=fm)
        if not inputs["is_real"].all():
            self.record(model, ce_loss=ce, code_accuracy=accuracy)
        return (loss, {"ce_loss": ce.detach()}) if return_outputs else loss

    def _flow_matching(self, model, out: dict, inputs: dict) -> torch.Tensor:
        """Mean flow-matching loss over the real-speech rows (logits and target mel from one forward)."""
        fm = self.flow_matching
        logits, device = out["logits"], out["logits"].device
        dit = fm.dit.to(device)
        repeats = out["mel"].shape[1] // max(logits.shape[1], 1)
        per_clip = []
        for b in inputs["is_real"].nonzero().flatten().tolist():
            n = int(out["code_mask"][b].sum())
            if n == 0:
                continue
            mel = out["mel"][b, : n * repeats]
            per_clip.append(flow_matching_loss(dit, logits[b, :n], mel, fm.cond.to(device)))
        return torch.stack(per_clip).mean() if per_clip else logits.sum() * 0
