"""(audio, codes) pairs for speech-tokenizer training, read from a manifest with `reply_codes`."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from ..audio import load_audio
from ..data.manifest import Example


class CodePairDataset(torch.utils.data.Dataset):
    """reply_audio (resampled to the tokenizer's rate) and reply_codes of each example."""

    def __init__(self, examples: list[Example], sample_rate: int) -> None:
        missing = [ex.source for ex in examples if ex.reply_audio is None or not ex.reply_codes]
        if missing:
            raise ValueError(f"{', '.join(missing[:5])}: speech-tokenizer pairs need reply_audio and reply_codes")
        self.examples, self.sample_rate = examples, sample_rate

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ex = self.examples[i]
        wav = load_audio(ex.reply_audio, self.sample_rate)
        return {"audio": torch.from_numpy(wav), "codes": torch.tensor(ex.reply_codes)}


class SpeechDataset(torch.utils.data.Dataset):
    """Real speech without codes (reply_audio, else user_audio), for the flow-matching objective."""

    def __init__(self, examples: list[Example], sample_rate: int) -> None:
        self.paths = [ex.reply_audio or ex.user_audio for ex in examples if ex.reply_audio or ex.user_audio]
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"real_audio": torch.from_numpy(load_audio(self.paths[i], self.sample_rate))}


def collate_pairs(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Right-pad audio and codes into one batch; lengths say what is real.

    Real-speech items (no codes) get code length 0 and `is_real` True, so one forward pass serves
    both objectives (ZeRO-3 needs every rank to run the same forward calls).
    """
    audio = [it.get("audio", it.get("real_audio")) for it in items]
    codes = [it.get("codes", torch.zeros(0, dtype=torch.long)) for it in items]
    return {
        "audio": pad_sequence(audio, batch_first=True),
        "audio_lengths": torch.tensor([len(a) for a in audio]),
        "codes": pad_sequence(codes, batch_first=True) if any(len(c) for c in codes) else torch.zeros(len(items), 1, dtype=torch.long),
        "code_lengths": torch.tensor([len(c) for c in codes]),
        "is_real": torch.tensor(["real_audio" in it for it in items]),
    }


def split_by_text(examples: list[Example], heldout_fraction: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Hold out whole texts (every speaker and sample of them), so held-out accuracy measures generalisation."""
    texts = sorted({ex.reply_text for ex in examples})
    gen = torch.Generator().manual_seed(seed)
    order = [texts[i] for i in torch.randperm(len(texts), generator=gen).tolist()]
    n_heldout = max(1, round(heldout_fraction * len(texts))) if heldout_fraction > 0 else 0
    heldout = set(order[:n_heldout])
    return [ex for ex in examples if ex.reply_text not in heldout], [ex for ex in examples if ex.reply_text in heldout]
