"""Intent-aware bridging: Thinker hidden states → a smooth intent latent that conditions the Talker."""

from .bridge import BridgeOutput, IntentBridge
from .config import CONDITIONING_MODES, IntentBridgeConfig
from .schedule import beta_at

__all__ = ["BridgeOutput", "IntentBridge", "IntentBridgeConfig", "CONDITIONING_MODES", "beta_at"]
