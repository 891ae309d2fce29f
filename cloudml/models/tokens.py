"""Feature maps as tokens, and their positions in space and time."""

from __future__ import annotations

import torch
from torch import nn


class SpaceTokens(nn.Module):
    """Feature map (N, D, h, w) -> tokens (N, h*w, D) tagged with their position in the frame."""

    def __init__(self, feature_size: tuple, dim: int):
        super().__init__()
        self.grid = tuple(feature_size)
        self.pos_space = nn.Parameter(torch.randn(1, self.grid[0] * self.grid[1], dim) * 0.02)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return fmap.flatten(2).transpose(1, 2) + self.pos_space  # (N, L, D)


class FramePosition(nn.Module):
    """Adds a learned vector per frame: (B, T, ..., D) -> same shape, for one token per frame or many."""

    def __init__(self, frames: int, dim: int):
        super().__init__()
        self.pos_time = nn.Parameter(torch.randn(1, frames, 1, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.pos_time if x.dim() == 4 else self.pos_time[:, :, 0])


class MultiScaleTokens(nn.Module):
    """Frames (B, T, ..., D) -> averages over every window of 1..T frames, each tagged by its
    length: (B, T(T+1)/2, ..., D)."""

    def __init__(self, frames: int, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(frames, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        windows = [x.unfold(1, w, 1).mean(-1) + self.scale[w - 1] for w in range(1, T + 1)]  # (B, T-w+1, ..., D)
        return torch.cat(windows, dim=1)
