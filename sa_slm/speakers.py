"""Speakers of the Token2Wav decoder: the Talker's text-bos id plus the DiT `cond` and `ref_mel`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import SpeakerError

SPEAKER_FILE = "spk_dict.pt"


@dataclass
class Speaker:
    name: str
    bos_token: int  # a Thinker token id fed to the Talker before the reply
    cond: torch.Tensor  # (1, enc_emb_dim) DiT speaker embedding
    ref_mel: torch.Tensor  # (1, frames, mel_dim) DiT reference mel

    def as_dict(self) -> dict:
        return {"bos_token": self.bos_token, "cond": self.cond, "ref_mel": self.ref_mel}


class SpeakerBank:
    """Name → Speaker, loaded from / saved to the released `spk_dict.pt` layout."""

    def __init__(self, speakers: dict[str, Speaker], default: str | None = None) -> None:
        if not speakers:
            raise SpeakerError("a model needs at least one speaker")
        self.speakers = speakers
        self.default = default if default in speakers else next(iter(speakers))

    def __getitem__(self, name: str | None) -> Speaker:
        name = self.default if name is None else name
        if name not in self.speakers:
            raise SpeakerError(f"unknown speaker {name!r}; available speakers: {', '.join(self.names)}")
        return self.speakers[name]

    @property
    def names(self) -> list[str]:
        return list(self.speakers)

    @classmethod
    def from_speaker_map(cls, raw: dict[str, dict]) -> "SpeakerBank":
        """From the released layout {name: {"bos_token", "cond", "ref_mel"}} (default speaker: Chelsie)."""
        speakers = {
            name: Speaker(name, int(v["bos_token"]), v["cond"].float(), v["ref_mel"].float()) for name, v in raw.items()
        }
        return cls(speakers, default="Chelsie")

    @classmethod
    def load(cls, path: str | Path) -> "SpeakerBank":
        return cls.from_speaker_map(torch.load(str(path), weights_only=True, map_location="cpu"))

    def save(self, path: str | Path) -> None:
        torch.save({name: s.as_dict() for name, s in self.speakers.items()}, str(path))

    @classmethod
    def random(cls, names_and_bos: dict[str, int], cond_dim: int, mel_dim: int, ref_frames: int = 40,
               seed: int = 0) -> "SpeakerBank":
        """Random speakers for random-weight models (the released map cannot be derived)."""
        gen = torch.Generator().manual_seed(seed)
        speakers = {
            name: Speaker(name, bos, torch.randn(1, cond_dim, generator=gen),
                          torch.randn(1, ref_frames, mel_dim, generator=gen))
            for name, bos in names_and_bos.items()
        }
        return cls(speakers)
