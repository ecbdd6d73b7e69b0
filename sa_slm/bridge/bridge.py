"""The single place where the Talker's per-token `reply_part` is formed, in one of four modes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .adaln import AdaLN
from .config import PARAMETER_FREE_MODES, IntentBridgeConfig
from .vib import VIBHead, masked_mean, reparameterise, token_kl


@dataclass
class BridgeOutput:
    reply_part: torch.Tensor  # (B, n, D) what the Talker reads for each reply token
    z: torch.Tensor | None = None  # (B, n, d) intent latents (sampled in training, mu otherwise)
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


class IntentBridge(nn.Module):
    """text: e · add: h + e · adaln_h: AdaLN(e | h) · vib_adaln: AdaLN(e | z), z ~ q(z | h).

    Optional acoustic context: a zero-initialised projection of the audio tower's states, added at the
    user-audio prefix positions (stock Qwen feeds zeros there).
    """

    def __init__(self, cfg: IntentBridgeConfig, hidden_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.mode == "vib_adaln":
            self.vib = VIBHead(hidden_size, cfg.latent_dim, cfg.vib_hidden)
            self.adaln = AdaLN(hidden_size, cfg.latent_dim)
        elif cfg.mode == "adaln_h":
            self.adaln = AdaLN(hidden_size, hidden_size)
        if cfg.acoustic_context == "audio_tower":
            self.acoustic_proj = nn.Linear(hidden_size, hidden_size)
            self.acoustic_proj.zero_init = True
            nn.init.zeros_(self.acoustic_proj.weight)
            nn.init.zeros_(self.acoustic_proj.bias)

    def forward(self, hidden: torch.Tensor, embeds: torch.Tensor, sample: bool = False,
                mode: str | None = None) -> BridgeOutput:
        """hidden, embeds: (B, n, D) Thinker states of the reply tokens. sample: reparameterised z.

        mode: the configured mode (None), or one of the parameter-free modes `add` (stock Qwen) and
        `text` (the stage-3 anchor) whatever the configured one is.
        """
        mode = mode or self.cfg.mode
        if mode not in (self.cfg.mode, *PARAMETER_FREE_MODES):
            raise ValueError(f"conditioning mode {mode!r} needs weights this bridge ({self.cfg.mode}) does not have; "
                             f"use {self.cfg.mode!r} or one of {', '.join(PARAMETER_FREE_MODES)}")
        if mode == "add":
            return BridgeOutput(hidden + embeds)
        if mode == "text":
            return BridgeOutput(embeds)
        if mode == "adaln_h":
            return BridgeOutput(self.adaln(embeds, hidden))
        mu, logvar = self.vib(hidden.to(self.vib.net[0].weight.dtype))
        mu, logvar = mu.float(), logvar.float()  # the posterior and its KL in fp32, whatever the weights
        z = reparameterise(mu, logvar) if sample else mu
        return BridgeOutput(self.adaln(embeds, z.to(embeds.dtype)), z, mu, logvar)

    def token_kl(self, out: BridgeOutput) -> torch.Tensor | None:
        """(B, n) KL of each token's posterior to this bridge's prior (None for modes without a latent)."""
        if out.mu is None:
            return None
        return token_kl(out.mu, out.logvar, out.z, self.cfg.prior, self.cfg.alpha, self.cfg.sigma_p)

    def kl(self, out: BridgeOutput, mask: torch.Tensor) -> torch.Tensor:
        """Per-token KL to the prior, averaged over real reply tokens (0 for modes without a latent)."""
        kl = self.token_kl(out)
        return torch.zeros((), device=mask.device) if kl is None else masked_mean(kl, mask)

    def acoustic(self, audio_states: torch.Tensor, audio_mask: torch.Tensor) -> torch.Tensor | None:
        """(B, S, D) projected audio-tower states at the user-audio positions (zero elsewhere), or None."""
        if self.cfg.acoustic_context == "none":
            return None
        return self.acoustic_proj(audio_states) * audio_mask[..., None].to(audio_states.dtype)
