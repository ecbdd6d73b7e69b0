"""Stage 3: closed-loop self-reward with Utility-Anchored Preference Optimisation (UAPO)."""

from .loss import UAPOLoss, uapo_loss

__all__ = ["UAPOLoss", "uapo_loss"]
