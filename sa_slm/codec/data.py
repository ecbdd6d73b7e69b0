"""(audio, codes) pairs and real speech for speech-tokenizer training, cropped to the tokenizer's window."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from ..audio import load_audio
from ..data.manifest import Example
from ..errors import SASLMError
from ..seeding import derive_seed
from .encoder import SpeechTokenizerConfig

log = logging.getLogger(__name__)


class _Windowed(torch.utils.data.Dataset):
    """Loads clips at the tokenizer's rate and crops those longer than its window (`max_codes` codes) to a
    window drawn per item and epoch, so training sees every part of a long clip across epochs. A clip that
    cannot be decoded is logged and given as None; `collate_pairs` drops it from its batch."""

    def __init__(self, config: SpeechTokenizerConfig, seed: int) -> None:
        self.config, self.seed, self.epoch = config, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new windows (the Trainer calls this at each epoch's start, `SpeechTokenizerTrainer`)."""
        self.epoch = epoch

    def _load(self, path: Path, source: str) -> np.ndarray | None:
        try:
            return load_audio(path, self.config.sample_rate)
        except SASLMError as exc:
            log.warning("%s: %s; dropped from its batch", source, exc)
            return None

    def _start(self, i: int, n_codes: int) -> int:
        """First code of item `i`'s window this epoch (0 when the clip fits the window)."""
        if n_codes <= self.config.max_codes:
            return 0
        gen = torch.Generator().manual_seed(derive_seed(self.seed, "window", i, self.epoch))
        return int(torch.randint(0, n_codes - self.config.max_codes + 1, (1,), generator=gen))


class CodePairDataset(_Windowed):
    """reply_audio (resampled to the tokenizer's rate) and reply_codes of each example, cropped to one
    window; code k covers samples [k * samples_per_code, (k + 1) * samples_per_code) before and after."""

    def __init__(self, examples: list[Example], config: SpeechTokenizerConfig, seed: int = 0) -> None:
        missing = [ex.source for ex in examples if ex.reply_audio is None or not ex.reply_codes]
        if missing:
            raise ValueError(f"{', '.join(missing[:5])}: speech-tokenizer pairs need reply_audio and reply_codes")
        super().__init__(config, seed)
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor] | None:
        ex = self.examples[i]
        wav = self._load(ex.reply_audio, ex.source)
        if wav is None:
            return None
        S, W = self.config.samples_per_code, self.config.max_codes
        k = self._start(i, min(len(ex.reply_codes), len(wav) // S))
        return {"audio": torch.from_numpy(wav[k * S : (k + W) * S].copy()),  # (<= W * S,)
                "codes": torch.tensor(ex.reply_codes[k : k + W])}  # (<= W,)


class SpeechDataset(_Windowed):
    """Real speech without codes (reply_audio, else user_audio), for the flow-matching objective, cropped
    to one window."""

    def __init__(self, examples: list[Example], config: SpeechTokenizerConfig, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.clips = [(ex.reply_audio or ex.user_audio, ex.source) for ex in examples if ex.reply_audio or ex.user_audio]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor] | None:
        wav = self._load(*self.clips[i])
        if wav is None:
            return None
        S, W = self.config.samples_per_code, self.config.max_codes
        k = self._start(i, len(wav) // S)
        return {"real_audio": torch.from_numpy(wav[k * S : (k + W) * S].copy())}  # (<= W * S,)


def collate_pairs(items: list[dict[str, torch.Tensor] | None]) -> dict[str, torch.Tensor]:
    """Right-pad audio and codes into one batch; lengths say what is real.

    Real-speech items (no codes) get code length 0 and `is_real` True, so one forward pass serves
    both objectives (ZeRO-3 needs every rank to run the same forward calls). Items that could not be
    loaded (None, already logged) are dropped; a batch left with none has zero rows.
    """
    items = [it for it in items if it is not None]
    if not items:
        return {"audio": torch.zeros(0, 0), "audio_lengths": torch.zeros(0, dtype=torch.long),
                "codes": torch.zeros(0, 1, dtype=torch.long), "code_lengths": torch.zeros(0, dtype=torch.long),
                "is_real": torch.zeros(0, dtype=torch.bool)}
    audio = [it.get("audio", it.get("real_audio")) for it in items]
    codes = [it.get("codes", torch.zeros(0, dtype=torch.long)) for it in items]
    return {
        "audio": pad_sequence(audio, batch_first=True),
        "audio_lengths": torch.tensor([len(a) for a in audio]),
        "codes": pad_sequence(codes, batch_first=True) if any(len(c) for c in codes) else torch.zeros(len(items), 1, dtype=torch.long),
        "code_lengths": torch.tensor([len(c) for c in codes]),
        "is_real": torch.tensor(["real_audio" in it for it in items]),
    }


def set_epoch(dataset: torch.utils.data.Dataset, epoch: int) -> None:
    """Pass the epoch to every windowed dataset in `dataset` (itself, or the parts of a ConcatDataset)."""
    parts = dataset.datasets if isinstance(dataset, torch.utils.data.ConcatDataset) else [dataset]
    for part in parts:
        if isinstance(part, _Windowed):
            part.set_epoch(epoch)


def split_by_text(examples: list[Example], heldout_fraction: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Hold out whole texts (every speaker and sample of them), so held-out accuracy measures generalisation."""
    texts = sorted({ex.reply_text for ex in examples})
    gen = torch.Generator().manual_seed(seed)
    order = [texts[i] for i in torch.randperm(len(texts), generator=gen).tolist()]
    n_heldout = max(1, round(heldout_fraction * len(texts))) if heldout_fraction > 0 else 0
    heldout = set(order[:n_heldout])
    return [ex for ex in examples if ex.reply_text not in heldout], [ex for ex in examples if ex.reply_text in heldout]
