"""Feature maps as tokens: the cap on how many a frame gives, and their positions in space and time."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def capped_grid(size: tuple, max_tokens: int) -> tuple:
    """The grid a feature map of `size` (h, w) is pooled to: itself when h*w <= max_tokens, else
    the largest grid of at most `max_tokens` cells with about the same aspect ratio."""
    h, w = size
    if max_tokens < 1:
        raise ValueError(f"max_tokens={max_tokens}: expected an integer >= 1")
    if h * w <= max_tokens:
        return h, w
    scale = math.sqrt(max_tokens / (h * w))
    gh = min(h, max_tokens, max(1, int(h * scale)))
    return gh, min(w, max_tokens // gh)


class SpaceTokens(nn.Module):
    """Feature map (N, D, h, w) -> tokens (N, L, D) tagged with their position in the frame; a map
    larger than `max_tokens` cells is average-pooled to the capped grid first, so that attention's
    cost does not grow with the frame size."""

    def __init__(self, feature_size: tuple, dim: int, max_tokens: int):
        super().__init__()
        self.grid = capped_grid(tuple(feature_size), max_tokens)
        self.pos_space = nn.Parameter(torch.randn(1, self.grid[0] * self.grid[1], dim) * 0.02)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        if tuple(fmap.shape[-2:]) != self.grid:
            fmap = F.adaptive_avg_pool2d(fmap, self.grid)  # (N, D, *grid)
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
