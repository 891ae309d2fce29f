"""The model: frames and scalars through a fixed pipeline of parts, each chosen by config."""

from __future__ import annotations

import torch
from torch import nn


class CloudBaseNet(nn.Module):
    """Images (B, T, C, H, W) + scalars (B, F) -> cloud base height (B,), normalised units.

    The parts, in the order data flows through them:
        stem           each frame to a feature map
        tokens         the map as at most `max_tokens` tokens, + their position in the frame
        space          each frame's tokens: kept all (joint attention) or pooled to one vector
        time_position  + each frame's position in time
        windows        frames as they are, or multi-scale averages over windows of frames
        time           all tokens of a sample to one feature vector
        parallax       + the frames' pixel-level parallax (None: not measured)
        film           the scalars scale and shift it (None: no scalars)
        head           the feature vector to the height
    `parameters()` lists the positions in space and time first, then the stem, space, windows,
    time, film, head and parallax: the order the optimiser's state and a gradient-norm sum follow,
    kept fixed.
    """

    def __init__(self, stem: nn.Module, tokens: nn.Module, time_position: nn.Module, space: nn.Module,
                 windows: nn.Module, time: nn.Module, film: nn.Module | None, head: nn.Module,
                 parallax: nn.Module | None = None):  # fmt: skip
        super().__init__()
        self.tokens, self.time_position, self.stem = tokens, time_position, stem  # registration order: see above
        self.space, self.windows, self.time = space, windows, time
        self.film, self.head, self.parallax = film, head, parallax

    def forward(self, images: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        B, T = images.shape[:2]
        fmap = self.stem(images.flatten(0, 1))  # (B*T, D, h, w)
        tokens = self.tokens(fmap)  # (B*T, L, D)
        frames = self.space(tokens).unflatten(0, (B, T))  # (B, T, L, D) or, pooled, (B, T, D)
        frames = self.windows(self.time_position(frames))  # (B, T', ..., D)
        features = self.time(frames.flatten(1, -2))  # (B, D)
        if self.parallax is not None:
            features = features + self.parallax(images)
        if self.film is not None:
            features = self.film(features, scalars)
        return self.head(features)  # (B,)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
