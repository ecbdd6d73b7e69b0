"""Variational information bottleneck on the Thinker's hidden state, with an OU (or i.i.d.) prior."""

from __future__ import annotations


import torch
from torch import nn


class VIBHead(nn.Module):
    """q(z_t | h_t) = N(mu(h_t), diag sigma(h_t)^2): an MLP giving mean and log-variance."""

    def __init__(self, hidden_size: int, latent_dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden_size, width), nn.SiLU(), nn.Linear(width, 2 * latent_dim))

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(hidden).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, prior_mean: torch.Tensor, prior_var: torch.Tensor | float
                ) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(prior_mean, prior_var)) summed over the last dim."""
    prior_var = torch.as_tensor(prior_var, dtype=mu.dtype, device=mu.device)
    return 0.5 * (torch.log(prior_var) - logvar + (logvar.exp() + (mu - prior_mean) ** 2) / prior_var - 1).sum(-1)


def ou_prior(z: torch.Tensor, alpha: float, sigma_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token prior mean and variance given the previous sampled latents. z: (B, n, d)."""
    mean = torch.cat([torch.zeros_like(z[:, :1]), alpha * z[:, :-1]], dim=1)
    var = torch.full_like(z[..., :1], sigma_p**2)
    var[:, 0] = sigma_p**2 / (1 - alpha**2)  # stationary variance for z_0
    return mean, var


def token_kl(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, prior: str, alpha: float, sigma_p: float
             ) -> torch.Tensor:
    """(B, n) KL of each token's posterior against its prior (OU: conditioned on the sampled z_{t-1})."""
    if prior == "iid":
        return gaussian_kl(mu, logvar, torch.zeros_like(mu), 1.0)
    mean, var = ou_prior(z, alpha, sigma_p)
    return gaussian_kl(mu, logvar, mean, var)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where mask is True (0 when there are none)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)



