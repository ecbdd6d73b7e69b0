"""EmoAlign: how strongly a speech emotion classifier (emotion2vec through funasr) hears the intended emotion.

Nothing is downloaded: the classifier runs only from a local checkpoint folder. Without funasr or
without that folder, `EmoAlign.available` is False, `EmoAlign.reason` says what to do, and every clip
scores None rather than a guess.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..audio import resample
from .failures import failure

EMOTION2VEC_SAMPLE_RATE = 16_000
EMOTION2VEC_CLASSES = ("angry", "disgusted", "fearful", "happy", "neutral", "other", "sad", "surprised", "unknown")

# Target emotion names (as a manifest or preset spells them) -> emotion2vec class. Only true synonyms:
# a style with no class of its own (calm, excited, whisper...) stays unmapped instead of being forced
# onto the nearest class.
TARGET_SYNONYMS = {
    "angry": "angry", "anger": "angry", "mad": "angry",
    "disgusted": "disgusted", "disgust": "disgusted",
    "fearful": "fearful", "fear": "fearful", "afraid": "fearful", "scared": "fearful",
    "happy": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy", "cheerful": "happy",
    "neutral": "neutral",
    "sad": "sad", "sadness": "sad",
    "surprised": "surprised", "surprise": "surprised",
}


@dataclass
class EmotionScore:
    """One clip: `align` = classifier probability (0–1, higher is better) of the target emotion class,
    `pred` = the class it ranks first; `reason` says why `align` is None."""

    align: float | None
    pred: str | None
    reason: str | None = None


def classifier_class(label: str) -> str:
    """English class of an emotion2vec label: "生气/angry" -> "angry", "<unk>" -> "unknown"."""
    name = label.rsplit("/", 1)[-1].strip().lower()
    return "unknown" if name in ("<unk>", "unk", "") else name


def target_class(emotion: str) -> str | None:
    """The emotion2vec class a target emotion name stands for, or None when it has none."""
    return TARGET_SYNONYMS.get(emotion.strip().lower())


def emotion_agreement(labels: Sequence[str], scores: Sequence[float], target: str | None) -> EmotionScore:
    """Agreement of one classifier output (its `labels` and their probabilities) with `target`."""
    if len(labels) != len(scores) or not labels:
        raise ValueError(f"classifier output has {len(labels)} labels and {len(scores)} scores")
    probs = {}
    for label, score in zip(labels, scores):
        name = classifier_class(label)
        probs[name] = probs.get(name, 0.0) + float(score)
    pred = max(probs, key=probs.__getitem__)
    if target is None:
        return EmotionScore(None, pred, "no target emotion given")
    cls = target_class(target)
    if cls is None:
        return EmotionScore(None, pred, f"target emotion {target!r} has no emotion2vec class "
                                        f"(classes: {', '.join(EMOTION2VEC_CLASSES)})")
    if cls not in probs:
        return EmotionScore(None, pred, f"the classifier output has no {cls!r} label")
    return EmotionScore(probs[cls], pred)


class EmoAlign:
    """emotion2vec agreement with target emotions, from a local checkpoint folder only.

    `model_dir` is a local emotion2vec folder (e.g. emotion2vec_plus_large: config.yaml, model.pt).
    Loading happens here; any problem leaves `available` False with the cause in `reason`. `model`
    takes an already-loaded funasr AutoModel (anything with its `generate(input=..., ...)`) instead.
    """

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", *, model: Any = None) -> None:
        self.model: Any = model
        self.reason = None if model is not None else self._load(model_dir, device)
        self.available = self.model is not None

    def _load(self, model_dir: str | Path | None, device: str) -> str | None:
        if model_dir is None:
            return "no emotion2vec model folder given: pass emotion_model=<local folder>"
        folder = Path(model_dir).expanduser()
        if not folder.is_dir():
            return f"emotion2vec weights not found at {folder}: pass emotion_model=<local folder>"
        if importlib.util.find_spec("funasr") is None:
            return "funasr is not installed: pip install 'sa-slm[funasr]'"
        if not (folder / "config.yaml").is_file():
            return f"{folder} is not an emotion2vec checkpoint (no config.yaml): pass emotion_model=<local folder>"
        try:
            from funasr import AutoModel

            self.model = AutoModel(model=str(folder), device=device, disable_update=True)
        except Exception as exc:  # noqa: BLE001 - a broken checkpoint disables the metric, it does not end the run
            return f"emotion2vec could not be loaded from {folder} ({type(exc).__name__}: {exc})"
        return None

    def classify(self, wav: np.ndarray, sample_rate: int) -> tuple[list[str], list[float]]:
        """The classifier's utterance-level labels and probabilities for one clip."""
        wav16k = resample(np.asarray(wav, dtype=np.float32), sample_rate, EMOTION2VEC_SAMPLE_RATE)
        out = self.model.generate(input=wav16k, granularity="utterance", extract_embedding=False)[0]
        return list(out["labels"]), [float(s) for s in out["scores"]]

    def __call__(self, wavs: list[np.ndarray], sample_rate: int, targets: Sequence[str | None] | None = None,
                 progress: bool = False) -> list[EmotionScore | None]:
        """One `EmotionScore` per clip; None for every clip when the classifier is unavailable.

        A clip the classifier fails on gets align and pred None, with the exception as `reason`.
        """
        if not self.available:
            return [None] * len(wavs)
        targets = list(targets) if targets is not None else [None] * len(wavs)
        if len(targets) != len(wavs):
            raise ValueError(f"{len(wavs)} clips but {len(targets)} target emotions")
        results: list[EmotionScore | None] = []
        for wav, target in tqdm(zip(wavs, targets), total=len(wavs), desc="EmoAlign", disable=not progress):
            try:
                results.append(emotion_agreement(*self.classify(wav, sample_rate), target))
            except Exception as exc:  # noqa: BLE001 - one bad clip must not end the batch
                results.append(EmotionScore(None, None, failure("emotion2vec", exc)))
        return results
