"""Sequence parts: a transformer over tokens, and the pools that turn tokens into one vector."""

from __future__ import annotations

import torch
from torch import nn


class Transformer(nn.TransformerEncoder):
    """Pre-norm transformer encoder (GELU, feed-forward 4 x dim): tokens (N, L, D) -> (N, L, D).
    Its layers start as copies of one initialised layer (how `nn.TransformerEncoder` builds them)."""

    def __init__(self, dim: int, heads: int, layers: int, dropout: float):
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)  # fmt: skip
        super().__init__(layer, layers, enable_nested_tensor=False)


class AttentionPool(nn.Module):
    """Tokens (N, L, D) -> (N, D): attention from one learned query."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(self.query.expand(len(tokens), -1, -1), tokens, tokens, need_weights=False)
        return out[:, 0]


class MeanPool(nn.Module):
    """Tokens (N, L, D) -> (N, D): their average."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.mean(1)


class Attend(nn.Module):
    """Tokens (N, L, D) -> (N, D): `mixer` (e.g. a Transformer) over them, then `pool`."""

    def __init__(self, mixer: nn.Module, pool: nn.Module):
        super().__init__()
        self.mixer, self.pool = mixer, pool

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.pool(self.mixer(tokens))


class Unchanged(nn.Module):
    """Passes its input on as it is (a stage an architecture does not have); takes no arguments,
    so that a setting meant for a real part cannot be given to it and silently ignored."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
