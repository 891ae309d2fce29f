"""Build a model from its config node (conf/model/<name>.yaml) and the data's shapes."""

from __future__ import annotations

import functools

from hydra.utils import instantiate
from omegaconf import DictConfig

from cloudml.models.net import CloudBaseNet

# CloudBaseNet's parts, in the order they are built (and their parameters drawn from the RNG).
PARTS = ("stem", "tokens", "time_position", "space", "windows", "time", "film", "head", "parallax")


def _part(node: DictConfig, **sizes):
    """The part `node` describes; one marked `_partial_: true` is completed with `sizes`."""
    part = instantiate(node)
    return part(**sizes) if isinstance(part, functools.partial) else part


def build_model(node: DictConfig, frame_shape: tuple, n_scalars: int) -> CloudBaseNet:
    """The model of `node` for frames of `frame_shape` (T, C, H, W) and `n_scalars` scalars.
    Parts are built one by one in `PARTS` order, so a seed gives the same initial weights
    whatever the order of the keys in the config."""
    T, C, H, W = frame_shape
    unknown = sorted(k for k, v in node.items() if isinstance(v, DictConfig) and "_target_" in v and k not in PARTS)
    if unknown:
        raise TypeError(f"model: {', '.join(unknown)} not a part of CloudBaseNet (its parts: {', '.join(PARTS)})")
    stem = _part(node.stem, in_channels=C)
    tokens = _part(node.tokens, feature_size=stem.output_size((H, W)))
    time_position = _part(node.time_position, frames=T)
    space = _part(node.space)
    windows = _part(node.windows, frames=T)
    time = _part(node.time)
    film = _part(node.film, n_scalars=n_scalars) if n_scalars else None
    head = _part(node.head)
    parallax = _part(node.parallax, frames=T, width=W) if node.get("parallax") is not None else None
    return CloudBaseNet(stem, tokens, time_position, space, windows, time, film, head, parallax)
