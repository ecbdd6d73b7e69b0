"""Hugging Face `Trainer` for the speech tokenizer (DeepSpeed, checkpoints, resume and logging from it)."""

from __future__ import annotations

from transformers import Trainer


class SpeechTokenizerTrainer(Trainer):
    """Cross-entropy on self-bootstrapped pairs; logs code accuracy next to the loss."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._accuracy: list[float] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = model(**inputs)
        if model.training:
            self._accuracy.append(float(out["accuracy"]))
        return (out["loss"], out) if return_outputs else out["loss"]

    def log(self, logs: dict, *args, **kwargs) -> None:
        if self._accuracy and "loss" in logs:
            logs["code_accuracy"] = sum(self._accuracy) / len(self._accuracy)
            self._accuracy.clear()
        super().log(logs, *args, **kwargs)
