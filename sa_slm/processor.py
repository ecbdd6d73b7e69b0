"""Audio + text processor for Qwen2.5-Omni that needs no torchvision.

Builds chat prompts with `<|audio_bos|><|AUDIO|>*n<|audio_eos|>` for user audio (n from the Whisper
feature length, as the stock processor computes it), left-pads batches and returns the tensors the
Thinker takes: input_ids, attention_mask, input_features, feature_attention_mask.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase, WhisperFeatureExtractor

from .audio import AudioInput, load_audio

DEFAULT_SYSTEM_PROMPT = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
    "auditory and visual inputs, as well as generating text and speech."
)
PROCESSOR_FILE = "sa_slm_processor.json"
#: The user turn for text-to-speech use: the model reads a given reply without dialogue context.
READ_ALOUD = "Read the following text aloud."


@dataclass
class Turn:
    """One dialogue turn. A user turn may carry audio (path or 16 kHz-resampled array) and/or text."""

    role: str
    text: str = ""
    audio: np.ndarray | None = None


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)
    system_prompt: str | None = None

    @classmethod
    def user(cls, text: str | None = None, audio: np.ndarray | None = None, history: Sequence[tuple[str, str]] = (),
             system_prompt: str | None = None) -> "Conversation":
        """A user turn (text and/or 16 kHz audio) after optional (role, text) history turns."""
        return cls([Turn(role, t) for role, t in history] + [Turn("user", text or "", audio)], system_prompt)


def audio_token_count(feature_frames: torch.Tensor) -> torch.Tensor:
    """Number of `<|AUDIO|>` placeholders for a Whisper feature length (two stride-2 stages)."""
    after_conv = (feature_frames - 1) // 2 + 1
    return (after_conv - 2) // 2 + 1


def preset_feature_extractor() -> WhisperFeatureExtractor:
    """The audio front end of the presets and of the released checkpoints: 128 log-mel bins, 16 kHz, 30 s."""
    return WhisperFeatureExtractor(feature_size=128)


def feature_extractor_limits(feature_extractor: WhisperFeatureExtractor) -> tuple[int, float]:
    """(sampling rate, longest user clip in seconds) a feature extractor takes in one piece (its window)."""
    rate = int(feature_extractor.sampling_rate)
    return rate, float(feature_extractor.n_samples) / rate


class OmniProcessor:
    """Tokenizer + Whisper feature extractor with the Qwen2.5-Omni prompt layout."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        feature_extractor: WhisperFeatureExtractor,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    ) -> None:
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.system_prompt = system_prompt
        self.audio_token, self.audio_bos, self.audio_eos = "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"
        self.audio_token_id = tokenizer.convert_tokens_to_ids(self.audio_token)

    # ---- audio -------------------------------------------------------------------------------
    @property
    def sampling_rate(self) -> int:
        return feature_extractor_limits(self.feature_extractor)[0]

    @property
    def max_audio_seconds(self) -> float:
        """Longest user audio the audio tower takes in one piece (the Whisper window)."""
        return feature_extractor_limits(self.feature_extractor)[1]

    def load_audio(self, audio: AudioInput, sampling_rate: int | None = None) -> np.ndarray:
        return load_audio(audio, self.sampling_rate, sampling_rate, max_seconds=self.max_audio_seconds)

    # ---- prompts -----------------------------------------------------------------------------
    def _turn_text(self, turn: Turn, n_audio_tokens: int | None) -> str:
        audio = "" if n_audio_tokens is None else self.audio_bos + self.audio_token * n_audio_tokens + self.audio_eos
        return f"<|im_start|>{turn.role}\n{audio}{turn.text}<|im_end|>\n"

    def feature_frames(self, num_samples: int) -> int:
        """Whisper feature frames of a clip (what the feature extractor's attention mask counts)."""
        return math.ceil(min(num_samples, self.feature_extractor.n_samples) / self.feature_extractor.hop_length)

    def __call__(self, conversations: list[Conversation], add_generation_prompt: bool = True,
                 with_features: bool = True) -> BatchFeature:
        """Left-padded batch of prompts (the Thinker generates after `<|im_start|>assistant\\n`).

        with_features=False returns the token ids only (same placeholders), skipping feature extraction.
        """
        audios = [t.audio for c in conversations for t in c.turns if t.audio is not None]
        features: dict[str, torch.Tensor] = {}
        counts: list[int] = []
        if audios and not with_features:
            counts = audio_token_count(torch.tensor([self.feature_frames(len(a)) for a in audios])).tolist()
        elif audios:
            # The same array object (a context clip shared by many rows) is featurised once.
            slot: dict[int, int] = {}
            unique = []
            for a in audios:
                if id(a) not in slot:
                    slot[id(a)] = len(unique)
                    unique.append(a)
            index = torch.tensor([slot[id(a)] for a in audios])
            fe = self.feature_extractor(
                unique, sampling_rate=self.sampling_rate, return_attention_mask=True, padding="max_length",
                return_tensors="pt",
            )
            features = {"input_features": fe["input_features"][index], "feature_attention_mask": fe["attention_mask"][index]}
            counts = audio_token_count(features["feature_attention_mask"].sum(-1)).tolist()
        texts, k = [], 0
        for conv in conversations:
            system = conv.system_prompt if conv.system_prompt is not None else self.system_prompt
            parts = [f"<|im_start|>system\n{system}<|im_end|>\n"] if system else []
            for turn in conv.turns:
                n = None
                if turn.audio is not None:
                    n, k = counts[k], k + 1
                parts.append(self._turn_text(turn, n))
            if add_generation_prompt:
                parts.append("<|im_start|>assistant\n")
            texts.append("".join(parts))
        self.tokenizer.padding_side = "left"
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return BatchFeature({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], **features})

    def encode_reply(self, text: str) -> list[int]:
        """Token ids of a reply text as the Thinker would write it (no EOS)."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # ---- persistence -------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        self.tokenizer.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)
        (path / PROCESSOR_FILE).write_text(json.dumps({"system_prompt": self.system_prompt}, indent=2))

    @classmethod
    def from_pretrained(cls, path: str | Path, **hub_kwargs) -> "OmniProcessor":
        tokenizer = AutoTokenizer.from_pretrained(str(path), **hub_kwargs)
        feature_extractor = WhisperFeatureExtractor.from_pretrained(str(path), **hub_kwargs)
        extra_file = Path(path) / PROCESSOR_FILE
        extra = json.loads(extra_file.read_text()) if extra_file.is_file() else {}
        return cls(tokenizer, feature_extractor, **extra)
