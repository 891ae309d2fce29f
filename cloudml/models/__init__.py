"""The program's architectures, each a composition of small `nn.Module` parts.

    cnn                     per-frame CNN, each frame's tokens averaged, frames averaged
    cnn_spatial             + attention over each frame's tokens (spatial attention)
    cnn_spatial_temporal    + attention across frames
    cnn_spatial_multiscale  + multi-scale temporal tokens (averages over windows of 1..T frames)
    transformer             one transformer over every token of every frame (the default)

Every one of them also measures the parallax between consecutive frames at pixel level
(`ParallaxFeatures`, a shift-correlation layer) and adds it to its features.

`conf/model/<name>.yaml` chooses each architecture's parts; `cloudml.models.build.build_model`
builds one for the data's frame shape. Plain torch (no Lightning, no Hydra): usable outside cloudml.
"""

from cloudml.models.attention import Attend, AttentionPool, MeanPool, Transformer, Unchanged
from cloudml.models.head import FiLM, RegressionHead
from cloudml.models.net import CloudBaseNet, count_parameters
from cloudml.models.parallax import ParallaxFeatures, shift_correlation
from cloudml.models.stem import CNNStem
from cloudml.models.tokens import FramePosition, MultiScaleTokens, SpaceTokens, capped_grid

__all__ = [
    "Attend", "AttentionPool", "CNNStem", "CloudBaseNet", "FiLM", "FramePosition", "MeanPool",
    "MultiScaleTokens", "ParallaxFeatures", "RegressionHead", "SpaceTokens", "Transformer", "Unchanged",
    "capped_grid", "count_parameters", "shift_correlation",
]  # fmt: skip
