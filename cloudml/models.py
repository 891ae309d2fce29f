"""The program's architectures as switchable parts of one plain `nn.Module`.

    cnn                     per-frame CNN, frames averaged
    cnn_spatial             + spatial attention over the CNN feature-map tokens
    cnn_spatial_temporal    + attention across frames
    cnn_spatial_multiscale  + multi-scale temporal attention (windows of 1..T frames)
    transformer             joint space-time transformer over all frames' tokens (default)

Ancillary scalars condition the pooled image features through FiLM (scale and shift).
No Lightning, no Hydra: usable outside cloudml.
"""

from __future__ import annotations

import torch
from torch import nn

TEMPORAL = ("mean", "attention", "multiscale", "joint")


def _encoder_layer(dim: int, heads: int, dropout: float) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True, norm_first=True)


class FrameEncoder(nn.Module):
    """CNN applied to each frame: (N, C, H, W) -> (N, D, H/2^k, W/2^k), k = len(channels)."""

    def __init__(self, in_channels: int, channels: list, dim: int):
        super().__init__()
        layers, prev = [], in_channels
        for i, ch in enumerate([*channels, dim]):
            stride = 2 if i < len(channels) else 1
            layers += [nn.Conv2d(prev, ch, 3, stride, 1), nn.GroupNorm(min(4, ch), ch), nn.GELU()]
            prev = ch
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AttentionPool(nn.Module):
    """Pool tokens (N, L, D) -> (N, D) with one learned query."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(self.query.expand(len(tokens), -1, -1), tokens, tokens, need_weights=False)
        return out[:, 0]


class MultiScaleTokens(nn.Module):
    """Frame embeddings (B, T, D) -> averages over every window of 1..T frames, tagged by scale."""

    def __init__(self, frames: int, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(frames, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        windows = [x.unfold(1, w, 1).mean(-1) + self.scale[w - 1] for w in range(1, T + 1)]  # (B, T-w+1, D)
        return torch.cat(windows, dim=1)


class CloudBaseNet(nn.Module):
    """Images (B, T, C, H, W) + scalars (B, F) -> cloud base height (B,), normalised units."""

    def __init__(
        self,
        in_channels: int,
        frames: int,
        image_size: tuple,
        n_scalars: int,
        channels: tuple = (16, 32, 32),
        dim: int = 32,
        spatial_attention: bool = True,
        temporal: str = "joint",
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        if temporal not in TEMPORAL:
            raise ValueError(f"temporal={temporal!r}: expected one of {TEMPORAL}")
        self.temporal, self.spatial_attention = temporal, spatial_attention
        self.encoder = FrameEncoder(in_channels, list(channels), dim)
        shrink = 2 ** len(channels)
        n_tokens = (-(-image_size[0] // shrink)) * (-(-image_size[1] // shrink))
        self.pos_space = nn.Parameter(torch.randn(1, n_tokens, dim) * 0.02)
        self.pos_time = nn.Parameter(torch.randn(1, frames, 1, dim) * 0.02)
        if temporal == "joint":  # one transformer over all frames' tokens
            self.joint = nn.TransformerEncoder(_encoder_layer(dim, heads, dropout), layers, enable_nested_tensor=False)
            self.pool = AttentionPool(dim, heads)
        else:
            if spatial_attention:
                self.spatial = nn.TransformerEncoder(_encoder_layer(dim, heads, dropout), 1, enable_nested_tensor=False)
                self.spatial_pool = AttentionPool(dim, heads)
            if temporal == "multiscale":
                self.scales = MultiScaleTokens(frames, dim)
            if temporal in ("attention", "multiscale"):
                self.across_frames = nn.TransformerEncoder(_encoder_layer(dim, heads, dropout), layers, enable_nested_tensor=False)
        self.film = nn.Linear(n_scalars, 2 * dim) if n_scalars else None
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, 1))

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        B, T = images.shape[:2]
        fmap = self.encoder(images.flatten(0, 1))  # (B*T, D, h, w)
        tokens = fmap.flatten(2).transpose(1, 2) + self.pos_space  # (B*T, h*w, D)
        if self.temporal == "joint":
            tokens = tokens.unflatten(0, (B, T)) + self.pos_time  # (B, T, h*w, D)
            return self.pool(self.joint(tokens.flatten(1, 2)))  # (B, D)
        if self.spatial_attention:
            frames = self.spatial_pool(self.spatial(tokens))  # (B*T, D)
        else:
            frames = tokens.mean(1)
        frames = frames.unflatten(0, (B, T)) + self.pos_time[:, :, 0]  # (B, T, D)
        if self.temporal == "multiscale":
            frames = self.scales(frames)
        if self.temporal in ("attention", "multiscale"):
            frames = self.across_frames(frames)
        return frames.mean(1)

    def forward(self, images: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        features = self.image_features(images)
        if self.film is not None:
            gamma, beta = self.film(scalars).chunk(2, dim=-1)
            features = features * (1 + gamma) + beta
        return self.head(features).squeeze(-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(node, frame_shape: tuple, n_scalars: int) -> nn.Module:
    """The model of config `node` for frames of `frame_shape` (T, C, H, W) and `n_scalars` scalars."""
    from hydra.utils import instantiate

    T, C, H, W = frame_shape
    return instantiate(node, in_channels=C, frames=T, image_size=(H, W), n_scalars=n_scalars)
