"""Zero-initialised adaptive LayerNorm: f = (1 + gamma(c)) * LayerNorm(x) + delta(c)."""

from __future__ import annotations

import torch
from torch import nn


class AdaLN(nn.Module):
    """Before training (gamma = delta = 0) the output is exactly LayerNorm(x)."""

    zero_init = True  # SASLMOmniModel._init_weights keeps gamma/delta at zero when loading without them

    def __init__(self, dim: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.gamma = nn.Linear(cond_dim, dim)
        self.delta = nn.Linear(cond_dim, dim)
        self.gamma.zero_init = self.delta.zero_init = True
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.gamma, self.delta):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return (1 + self.gamma(cond)) * self.norm(x) + self.delta(cond)
