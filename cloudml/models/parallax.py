"""The parallax between consecutive frames, measured at pixel level: the stereo cue to cloud height.

The aircraft moves along the frames' width, so a cloud field seen in frame t reappears in frame
t + 1 shifted along x by a parallax that grows as the cloud top nears the camera. A per-frame
stem that shrinks each frame 8-fold before frames meet cannot resolve a fraction of a pixel of
it; a correlation (cost-volume) layer can: the normalised cross-correlation of each pair of
consecutive frames at every along-track shift, its peak at the parallax.
"""

from __future__ import annotations

import torch
from torch import nn


# Up to this many shifts each way the correlation is summed shift by shift; beyond, one FFT of
# every row gives all shifts at once (the same values to float rounding; 237 -> 51 ms for a batch
# of 4 x 3 frames of 440 x 640 at 160 shifts, 0.8 vs 2.1 ms at 32 x 32 and 8 shifts; 1 thread).
DIRECT_MAX_SHIFT = 16


def shift_correlation(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Images (B, T, C, H, W) -> (B, 2 * max_shift + 1): for each along-track shift s in
    -max_shift..max_shift, the correlation of frame t with frame t + 1 moved back by s pixels
    (over the columns they share), averaged over the T - 1 pairs and the channels. Each frame is
    standardised first, so the curve ignores brightness and contrast."""
    x = images - images.mean((-2, -1), keepdim=True)
    x = x / x.square().mean((-2, -1), keepdim=True).add(1e-6).sqrt()
    now, after = x[:, :-1], x[:, 1:]
    H, W = x.shape[-2:]
    if max_shift <= DIRECT_MAX_SHIFT:
        curve = [(now[..., : W - s] * after[..., s:]).mean((-2, -1)) if s >= 0 else
                 (now[..., -s:] * after[..., : W + s]).mean((-2, -1)) for s in range(-max_shift, max_shift + 1)]  # fmt: skip
        return torch.stack(curve, -1).mean((1, 2))  # (B, T-1, C, S) -> (B, S)
    n = 2 * W  # zero-padded: the circular correlation of the padded rows is the linear one
    spectrum = torch.fft.rfft(x, n=n, dim=-1)
    sums = torch.fft.irfft(spectrum[:, :-1].conj() * spectrum[:, 1:], n=n, dim=-1).sum(-2)  # (B, T-1, C, n)
    shifts = torch.arange(-max_shift, max_shift + 1, device=x.device)
    return (sums[..., shifts % n] / (H * (W - shifts.abs()))).mean((1, 2))


class ParallaxFeatures(nn.Module):
    """Images (B, T, C, H, W) -> (B, dim): the shape of the shift-correlation curve (standardised
    over its shifts: pixel noise and the scene's evolution between frames lower the whole curve,
    the parallax moves its peak) through a small GELU MLP, added to the attention stages'
    features. `max_shift` (pixels of the model's input) must exceed the data's largest parallax
    between consecutive frames and be less than the frame `width`; None: a quarter of the width."""

    def __init__(self, frames: int, width: int, dim: int, max_shift: int | None = None):
        super().__init__()
        if frames < 2:
            raise ValueError(f"parallax needs at least 2 frames a sample, got {frames}")
        max_shift = max(1, width // 4) if max_shift is None else max_shift
        if not 1 <= max_shift < width:
            raise ValueError(f"model.parallax.max_shift={max_shift}: expected an integer from 1 to less than the frame width {width}")
        self.max_shift = int(max_shift)
        self.embed = nn.Sequential(nn.Linear(2 * self.max_shift + 1, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        curve = shift_correlation(images, self.max_shift)
        curve = (curve - curve.mean(-1, keepdim=True)) / curve.std(-1, keepdim=True).clamp_min(1e-6)
        return self.embed(curve)
