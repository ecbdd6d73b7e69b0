"""Code-space EmoAlign: a small delivery-style classifier over Talker code sequences.

Trained on the tokenised training clips (real synthetic speech → stage-0 tokenizer → codes), it plays
the part emotion2vec plays in the paper: EmoAlign is the share of sampled replies it assigns to the
style the context calls for. Its own accuracy on the tokenised held-out clips is the ceiling any
model can reach under it.

Features of one sequence (F = V + 1 + B + 1 + 1):
    unigram frequencies over the V codes seen in training (+ one "other" column),
    bigram frequencies over the B = (top-k codes)² pairs (+ one "other" column),
    log length.
Model: multinomial logistic regression on z-scored features (L2, full-batch Adam, seeded).

`oracle_reward` is the same classifier as a stage-3 reward (`rewards: [{function:
sa_slm.paper_mini.codestyle:oracle_reward, args: {classifier: DIR}}]`): it scores the Talker codes each
rollout was decoded from, the sequences EmoAlign classifies, and returns the probability of the
target style. (Re-tokenising the decoded audio instead goes through the random stand-in's Token2Wav,
whose audio is unlike the corpus speech the classifier was trained on: its probabilities there were a
third of those on the codes themselves.)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import SASLMError
from ..probe import fit_logistic_regression

WEIGHTS = "classifier.safetensors"
SETTINGS = "classifier.json"


@dataclass
class CodeStyleClassifier:
    styles: list[str]
    vocab: list[int]  # codes with their own unigram column
    pairs: list[int]  # the top codes whose bigrams have a column
    weight: torch.Tensor  # (S, F)
    bias: torch.Tensor  # (S,)
    mean: torch.Tensor  # (F,) feature standardisation
    std: torch.Tensor  # (F,)

    def features(self, codes: Sequence[Sequence[int]]) -> torch.Tensor:
        return sequence_features(codes, self.vocab, self.pairs)

    @torch.no_grad()
    def probabilities(self, codes: Sequence[Sequence[int]]) -> torch.Tensor:
        """(N, S) style probabilities of N code sequences."""
        x = (self.features(codes) - self.mean) / self.std
        return torch.softmax(x @ self.weight.T + self.bias, dim=-1)

    def predict(self, codes: Sequence[Sequence[int]]) -> list[str]:
        return [self.styles[i] for i in self.probabilities(codes).argmax(-1).tolist()]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight.contiguous(), "bias": self.bias, "mean": self.mean, "std": self.std},
                  str(folder / WEIGHTS))
        (folder / SETTINGS).write_text(json.dumps({"styles": self.styles, "vocab": self.vocab, "pairs": self.pairs}))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "CodeStyleClassifier":
        folder = Path(folder)
        if not (folder / WEIGHTS).is_file() or not (folder / SETTINGS).is_file():
            raise SASLMError(f"{folder}: no code-style classifier ({WEIGHTS} + {SETTINGS}); "
                             "train one with sa_slm.paper_mini.codestyle.train_classifier")
        settings = json.loads((folder / SETTINGS).read_text())
        tensors = load_file(str(folder / WEIGHTS))
        return cls(settings["styles"], settings["vocab"], settings["pairs"], tensors["weight"], tensors["bias"],
                   tensors["mean"], tensors["std"])


def sequence_features(codes: Sequence[Sequence[int]], vocab: list[int], pairs: list[int]) -> torch.Tensor:
    """(N, V + 1 + P² + 1 + 1) unigram and bigram frequencies and log length of each sequence."""
    col = {c: i for i, c in enumerate(vocab)}
    pair_col = {c: i for i, c in enumerate(pairs)}
    V, P = len(vocab), len(pairs)
    out = np.zeros((len(codes), V + 1 + P * P + 1 + 1), dtype=np.float32)
    for n, seq in enumerate(codes):
        seq = list(seq)
        length = max(len(seq), 1)
        for c in seq:
            out[n, col.get(c, V)] += 1.0 / length
        for a, b in zip(seq[:-1], seq[1:]):
            i, j = pair_col.get(a), pair_col.get(b)
            index = V + 1 + i * P + j if i is not None and j is not None else V + 1 + P * P
            out[n, index] += 1.0 / max(len(seq) - 1, 1)
        out[n, -1] = math.log(length)
    return torch.from_numpy(out)


def train_classifier(codes: Sequence[Sequence[int]], labels: Sequence[str], styles: Sequence[str], seed: int = 0,
                     top_pairs: int = 16, steps: int = 400, weight_decay: float = 1e-3) -> CodeStyleClassifier:
    """Fit the classifier on labelled code sequences (every label must be one of `styles`)."""
    unknown = sorted(set(labels) - set(styles))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the styles {list(styles)}")
    counts: dict[int, int] = {}
    for seq in codes:
        for c in seq:
            counts[c] = counts.get(c, 0) + 1
    vocab = sorted(counts)
    pairs = sorted(sorted(counts, key=lambda c: (-counts[c], c))[:top_pairs])
    x = sequence_features(codes, vocab, pairs)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x - mean) / std
    y = torch.tensor([list(styles).index(s) for s in labels])
    linear = fit_logistic_regression(xs, y, len(styles), steps, weight_decay, seed)
    return CodeStyleClassifier(list(styles), vocab, pairs, linear.weight.detach().clone(), linear.bias.detach().clone(),
                               mean, std)


@lru_cache(maxsize=4)
def _cached(classifier: str) -> CodeStyleClassifier:
    return CodeStyleClassifier.load(classifier)


def oracle_reward(wavs: list[np.ndarray], sample_rate: int, *, reply_text: str, labels: dict, codes: list[list[int]],
                  classifier: str, label: str = "emotion") -> list[float | None]:
    """Stage-3 reward (see the module docstring): p(target style | the clip's Talker codes) per clip."""
    target = labels.get(label)
    clf = _cached(str(classifier))
    if target not in clf.styles:
        raise ValueError(f"label {label}={target!r} is not a style the classifier knows ({', '.join(clf.styles)})")
    probs = clf.probabilities(codes)[:, clf.styles.index(target)]
    return [float(p) for p in probs]
