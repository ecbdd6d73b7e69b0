"""Audio → per-frame logits over the Talker's codec vocabulary, at the Talker's code rate.

Code rate: Token2Wav renders `repeats` mel frames per code at `sample_rate / hop` mel frames per
second (released models: 24000 / 240 = 100 frames/s, repeats 2 → 50 codes/s). The encoder computes
a log-mel at that frame rate and downsamples by `repeats` with a strided convolution, so code t
covers mel frames [repeats*t, repeats*(t+1)), exactly the frames the DiT renders from it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from transformers import PretrainedConfig, PreTrainedModel, Qwen2_5OmniConfig
from transformers.audio_utils import mel_filter_bank


#: How the encoder normalises its log-mel input. frame: LayerNorm over each frame's bins, which removes the
#: frame's loudness, so no code can carry it (tokenizers saved before this option). level: the same LayerNorm
#: plus the frame's loudness (its mean log-mel) as one more input channel (`MelLevelNorm`).
MEL_NORMS = ("frame", "level")
#: log-mel floor (`log_mel` clamps the magnitude at 1e-5); the loudness channel maps [floor, 0] onto [-1, 1].
LOG_MEL_FLOOR = math.log(1e-5)


class MelLevelNorm(nn.Module):
    """(B, T, n_mels) log-mel → (B, T, n_mels + 1): per-frame LayerNorm of the bins and the frame's loudness.

    A per-frame LayerNorm conditions the encoder's input well but discards how loud each frame is, a cue of
    delivery (loud, angry speech against quiet, sad speech) that the codes could otherwise carry.
    """

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(n_mels)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        half = -LOG_MEL_FLOOR / 2
        loudness = (mel.mean(-1, keepdim=True) + half) / half
        return torch.cat([self.norm(mel), loudness], dim=-1)


class SpeechTokenizerConfig(PretrainedConfig):
    model_type = "sa_slm_speech_tokenizer"

    def __init__(
        self,
        sample_rate: int = 24_000,
        hop_length: int = 240,
        n_fft: int = 1024,
        n_mels: int = 80,
        f_max: float = 12_000.0,
        frames_per_code: int = 2,
        codebook_size: int = 8193,
        hidden_size: int = 256,
        num_layers: int = 4,
        num_heads: int = 4,
        dropout: float = 0.0,
        max_codes: int = 4096,
        mel_norm: str = "frame",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if mel_norm not in MEL_NORMS:
            raise ValueError(f"mel_norm {mel_norm!r}: choose one of {', '.join(MEL_NORMS)}")
        self.mel_norm = mel_norm
        self.sample_rate, self.hop_length, self.n_fft, self.n_mels, self.f_max = sample_rate, hop_length, n_fft, n_mels, f_max
        self.frames_per_code, self.codebook_size = frames_per_code, codebook_size
        self.hidden_size, self.num_layers, self.num_heads, self.dropout = hidden_size, num_layers, num_heads, dropout
        self.max_codes = max_codes

    @property
    def samples_per_code(self) -> int:
        return self.hop_length * self.frames_per_code

    @property
    def codes_per_second(self) -> float:
        return self.sample_rate / self.samples_per_code

    @classmethod
    def for_omni(cls, omni: Qwen2_5OmniConfig, **overrides) -> "SpeechTokenizerConfig":
        """Frame rate and codebook derived from a Qwen2.5-Omni Token2Wav config."""
        t2w = omni.token2wav_config
        hop = math.prod(t2w.bigvgan_config.upsample_rates)
        fields = dict(hop_length=hop, n_mels=t2w.dit_config.mel_dim, frames_per_code=t2w.dit_config.repeats,
                      codebook_size=t2w.dit_config.num_embeds)
        fields.update(overrides)
        return cls(**fields)


def mel_filters(cfg: SpeechTokenizerConfig) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) Slaney mel filter bank."""
    fb = mel_filter_bank(cfg.n_fft // 2 + 1, cfg.n_mels, 0.0, cfg.f_max, cfg.sample_rate, norm="slaney",
                         mel_scale="slaney")
    return torch.tensor(fb, dtype=torch.float32)


def log_mel(wav: torch.Tensor, filters: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """Natural-log mel spectrogram (the DiT/BigVGAN convention), (B, samples) → (B, frames, n_mels).

    A plain function, not a module, so per-clip calls leave no trace in ZeRO-3's module bookkeeping.
    """
    n_fft = window.shape[0]
    if wav.shape[-1] < n_fft:  # reflect padding needs a few samples; very short clips get zeros
        wav = nn.functional.pad(wav, (0, n_fft - wav.shape[-1]))
    pad = (n_fft - hop) // 2
    wav = nn.functional.pad(wav.float()[:, None], (pad, pad), mode="reflect")[:, 0]
    spec = torch.stft(wav, n_fft, hop, window=window, center=False, return_complex=True).abs()
    return torch.log(torch.matmul(spec.transpose(1, 2), filters).clamp_min(1e-5))


class LogMel(nn.Module):
    """`log_mel` with its filter bank and window, for use outside the tokenizer (metrics)."""

    def __init__(self, cfg: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.hop = cfg.hop_length
        self.register_buffer("filters", mel_filters(cfg))
        self.register_buffer("window", torch.hann_window(cfg.n_fft))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return log_mel(wav, self.filters, self.window, self.hop)


class EncoderBlock(nn.Module):
    """Pre-norm self-attention + MLP block; padding keys are masked out."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attn = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=valid[:, None, None, :], dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.out(attn.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.norm2(x))


class SpeechTokenizer(PreTrainedModel):
    """Log-mel → strided conv (frames_per_code) → Transformer encoder → codebook logits."""

    config_class = SpeechTokenizerConfig
    base_model_prefix = "speech_tokenizer"
    main_input_name = "audio"

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__(config)
        # Persistent buffers, so that loading (which builds the model on the meta device) restores them.
        self.register_buffer("mel_filters", mel_filters(config))
        self.register_buffer("mel_window", torch.hann_window(config.n_fft))
        # log-mel levels vary by tens of units across bins (MEL_NORMS)
        self.mel_norm = nn.LayerNorm(config.n_mels) if config.mel_norm == "frame" else MelLevelNorm(config.n_mels)
        h = config.hidden_size
        self.frontend = nn.Sequential(
            nn.Conv1d(config.n_mels + (config.mel_norm == "level"), h, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv1d(h, h, kernel_size=config.frames_per_code, stride=config.frames_per_code),
            nn.GELU(),
        )
        self.positions = nn.Embedding(config.max_codes, h)
        self.blocks = nn.ModuleList(EncoderBlock(h, config.num_heads, config.dropout) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(h)
        self.head = nn.Linear(h, config.codebook_size)
        self.post_init()

    def num_codes(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Codes produced for `num_samples` of audio (one per `samples_per_code`, rounded down)."""
        return num_samples // self.config.samples_per_code

    def forward(self, audio: torch.Tensor, audio_lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """audio: (B, samples) at config.sample_rate, right-padded. Returns `logits` (B, T, codebook),
        `code_mask` (B, T) True at real code positions, and `mel` (B, T * frames_per_code, n_mels), the
        log-mel it encoded. Computes no loss (the objectives are in `codec/objectives.py`)."""
        B = audio.shape[0]
        if audio_lengths is None:
            audio_lengths = torch.full((B,), audio.shape[1], device=audio.device)
        n_codes = self.num_codes(audio_lengths)
        T = int(n_codes.max())
        if T > self.config.max_codes:
            raise ValueError(f"{T} codes exceed the tokenizer's max_codes={self.config.max_codes}; "
                             "encode longer audio with `encode_long` (windowed) or crop it")
        # Per clip, on its own samples, so padding never leaks into a clip's last frames.
        frames = n_codes * self.config.frames_per_code
        mel = audio.new_zeros(B, T * self.config.frames_per_code, self.config.n_mels)
        for b in range(B):
            if frames[b] > 0:
                clip = audio[b : b + 1, : audio_lengths[b]]
                mel[b, : frames[b]] = log_mel(clip, self.mel_filters, self.mel_window, self.config.hop_length)[0, : frames[b]]
        x = self.frontend(self.mel_norm(mel).transpose(1, 2)).transpose(1, 2)[:, :T]  # (B, T, h)
        x = x + self.positions(torch.arange(T, device=x.device))[None]
        valid = torch.arange(T, device=x.device)[None] < n_codes[:, None]
        for block in self.blocks:
            x = block(x, valid)
        return {"logits": self.head(self.norm(x)), "code_mask": valid, "mel": mel}

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, audio_lengths: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Greedy codes per clip (B, samples) → list of (n_codes,) tensors."""
        out = self(audio, audio_lengths)
        n = out["code_mask"].sum(-1).tolist()
        return [row[:k] for row, k in zip(out["logits"].argmax(-1), n)]

    def windows(self, n_codes: int, overlap: int | None = None) -> list[tuple[int, int, int]]:
        """How `encode_long` covers `n_codes` codes: (window start, keep from, keep to), in codes.

        Windows are `max_codes` long and overlap by `2 * overlap` codes (default max_codes // 8); each
        keeps its centre, the first from code 0 and the last (aligned to the clip's end) up to the end,
        so the kept parts tile [0, n_codes) exactly and no kept code sits within `overlap` codes of a
        window edge it does not share with the clip.
        """
        W = self.config.max_codes
        if n_codes <= W:
            return [(0, 0, n_codes)]
        O = W // 8 if overlap is None else overlap
        if not 0 <= 2 * O < W:
            raise ValueError(f"overlap {O} leaves no centre in a {W}-code window")
        starts = list(range(0, n_codes - W, W - 2 * O)) + [n_codes - W]
        bounds = [0] + [s + W - O for s in starts[:-1]] + [n_codes]
        return [(s, bounds[k], bounds[k + 1]) for k, s in enumerate(starts)]

    @torch.no_grad()
    def encode_long(self, clips: list[torch.Tensor], batch_size: int = 8, overlap: int | None = None) -> list[torch.Tensor]:
        """Greedy codes of clips of any length: list of (samples,) → list of (samples // samples_per_code,).

        A clip longer than `max_codes` codes is encoded in overlapping windows (`windows`) whose centres
        are joined into one sequence, as long as one pass over the whole clip would give; a shorter clip
        is one window, the same computation as `encode`. Windows of all clips go through in batches of
        `batch_size`. A clip under one code gives an empty tensor.
        """
        S = self.config.samples_per_code
        pieces = []  # (clip index, audio of the window, keep from, keep to) with keep relative to the window
        for c, clip in enumerate(clips):
            n = clip.shape[-1] // S
            for start, lo, hi in self.windows(n, overlap) if n else []:
                last = start + self.config.max_codes >= n
                audio = clip[start * S :] if last else clip[start * S : (start + self.config.max_codes) * S]
                pieces.append((c, audio, lo - start, hi - start))
        kept: list[list[torch.Tensor]] = [[] for _ in clips]
        for b in range(0, len(pieces), batch_size):
            batch = pieces[b : b + batch_size]
            audio = pad_sequence([p[1] for p in batch], batch_first=True).to(self.device)  # (B, samples)
            lengths = torch.tensor([len(p[1]) for p in batch], device=self.device)
            for (c, _, lo, hi), codes in zip(batch, self.encode(audio, lengths)):
                kept[c].append(codes[lo:hi])
        return [torch.cat(k) if k else torch.zeros(0, dtype=torch.long, device=self.device) for k in kept]
