"""The per-frame CNN stem: frames to feature maps."""

from __future__ import annotations

import torch
from torch import nn


class CNNStem(nn.Module):
    """(N, C, H, W) -> (N, dim, ceil(H / 2^k), ceil(W / 2^k)): one stride-2 conv per entry of
    `channels` (k of them), then a stride-1 conv to `dim`; each conv + GroupNorm + GELU."""

    def __init__(self, in_channels: int, channels: list, dim: int):
        super().__init__()
        layers, prev = [], in_channels
        for i, ch in enumerate([*channels, dim]):
            stride = 2 if i < len(channels) else 1
            layers += [nn.Conv2d(prev, ch, 3, stride, 1), nn.GroupNorm(min(4, ch), ch), nn.GELU()]
            prev = ch
        # channels-last conv weights make every conv of the stem run channels-last (oneDNN's faster
        # layout on CPU: 5-10 % a training step at 32 x 32 and 110 x 160, bench/README.md)
        self.net = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.shrink = 2 ** len(channels)

    def output_size(self, image_size: tuple) -> tuple:
        """The feature map's (h, w) for frames of `image_size` (H, W): a 3x3, stride-2, padding-1
        conv maps n pixels to ceil(n / 2)."""
        return tuple(-(-n // self.shrink) for n in image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
