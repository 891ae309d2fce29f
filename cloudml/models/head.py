"""The scalars' conditioning of the image features, and the regression head."""

from __future__ import annotations

import torch
from torch import nn


class FiLM(nn.Module):
    """Features (B, D) scaled and shifted by a linear map of the ancillary scalars (B, F)."""

    def __init__(self, n_scalars: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(n_scalars, 2 * dim)

    def forward(self, features: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(scalars).chunk(2, dim=-1)  # (B, D) each
        return features * (1 + gamma) + beta


class RegressionHead(nn.Module):
    """Features (B, D) -> one value per sample (B,): LayerNorm, a GELU MLP, a linear output."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)
