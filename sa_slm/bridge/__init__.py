"""Intent-aware bridging: Thinker hidden states → a smooth intent latent that conditions the Talker."""

from .bridge import BridgeOutput, IntentBridge
from .config import CONDITIONING_MODES, PARAMETER_FREE_MODES, IntentBridgeConfig
from .schedule import kl_weight_at

__all__ = ["BridgeOutput", "IntentBridge", "IntentBridgeConfig", "CONDITIONING_MODES", "PARAMETER_FREE_MODES",
           "kl_weight_at"]
