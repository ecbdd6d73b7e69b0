"""Hugging Face `Trainer` for the speech tokenizer (DeepSpeed, checkpoints, resume and logging from it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import TrainerCallback

from ..training.trainer_utils import LoggedTermsTrainer
from .data import set_epoch
from .flow_matching import flow_matching_loss
from .objectives import code_cross_entropy


@dataclass
class FlowMatchingObjective:
    """Frozen DiT + one speaker (vector and reference mel) used on real-speech items; `weight` scales the loss."""

    dit: nn.Module
    cond: torch.Tensor  # (1, enc_emb_dim)
    ref_mel: torch.Tensor  # (1, frames, mel_dim)
    weight: float = 0.1

    def __post_init__(self) -> None:
        self.dit.eval().requires_grad_(False)


class _WindowEpoch(TrainerCallback):
    """New training windows of long clips each epoch (`codec.data.set_epoch`), set before the epoch's
    data loader starts (and its workers copy the dataset)."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        set_epoch(self.dataset, int(state.epoch or 0))


class SpeechTokenizerTrainer(LoggedTermsTrainer):
    """code_loss_weight * cross-entropy on self-bootstrapped pairs + weighted flow matching on real speech.

    Logs `code_accuracy`, `ce_loss` and `fm_loss` next to the total loss.
    """

    def __init__(self, *args, flow_matching: FlowMatchingObjective | None = None, code_loss_weight: float = 1.0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flow_matching, self.code_loss_weight = flow_matching, code_loss_weight
        if self.train_dataset is not None:
            self.add_callback(_WindowEpoch(self.train_dataset))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if inputs["audio"].shape[0] == 0:  # every clip of the batch failed to load (logged by the dataset)
            # One code of silence keeps the forward calls the same on every rank (ZeRO-3); the loss is 0.
            samples = self.model.config.samples_per_code
            loss = model(inputs["audio"].new_zeros(1, samples))["logits"].sum() * 0
            return (loss, {"ce_loss": loss.detach()}) if return_outputs else loss
        out = model(inputs["audio"], inputs["audio_lengths"])
        ce, accuracy = code_cross_entropy(out["logits"], out["code_mask"], inputs["codes"], inputs["code_lengths"])
        loss = self.code_loss_weight * ce
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
            per_clip.append(flow_matching_loss(dit, logits[b, :n], mel, fm.cond.to(device), fm.ref_mel.to(device)))
        return torch.stack(per_clip).mean() if per_clip else logits.sum() * 0
