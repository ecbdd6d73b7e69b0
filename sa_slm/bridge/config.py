"""Intent-bridge settings; stored in the model config (`config.sa_slm`) so they travel with the weights."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError, did_you_mean

#: text: e_t (TTS-like) · add: h_t + e_t (stock Qwen) · adaln_h: AdaLN(e_t | h_t) · vib_adaln: AdaLN(e_t | z_t)
CONDITIONING_MODES = ("text", "add", "adaln_h", "vib_adaln")
#: Modes without weights, usable with any bridge: the stock path (`add`) and the stage-3 anchor (`text`).
PARAMETER_FREE_MODES = ("add", "text")
PRIORS = ("ou", "iid")
ACOUSTIC_CONTEXTS = ("none", "audio_tower")


@dataclass
class IntentBridgeConfig:
    mode: str = "add"
    latent_dim: int = 64  # size of z_t (the paper does not state it)
    vib_hidden: int = 256  # width of the VIB MLP
    prior: str = "ou"  # Ornstein–Uhlenbeck / AR(1) prior, or "iid" N(0, I) (ablation)
    alpha: float = 0.95  # OU prior: p(z_t | z_{t-1}) = N(alpha z_{t-1}, sigma_p^2 I)
    sigma_p: float = 0.5
    acoustic_context: str = "none"  # "audio_tower": user-audio prefix positions carry projected tower states

    def __post_init__(self) -> None:
        for name, value, allowed in (("mode", self.mode, CONDITIONING_MODES), ("prior", self.prior, PRIORS),
                                     ("acoustic_context", self.acoustic_context, ACOUSTIC_CONTEXTS)):
            if value not in allowed:
                raise ConfigError(f"bridge.{name}: unknown intent-bridge {name} {value!r}; choose one of "
                                  f"{', '.join(allowed)}{did_you_mean(value, allowed)}")
        for name, value in (("latent_dim", self.latent_dim), ("vib_hidden", self.vib_hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"intent-bridge {name} must be a positive integer, got {value!r}")
        if not 0 <= self.alpha < 1 or not self.sigma_p > 0 or self.sigma_p == float("inf"):
            raise ConfigError(f"OU prior needs 0 <= alpha < 1 and sigma_p > 0, got alpha={self.alpha}, sigma_p={self.sigma_p}")

    @property
    def has_latent(self) -> bool:
        return self.mode == "vib_adaln"
