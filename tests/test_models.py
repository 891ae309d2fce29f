"""Every architecture of conf/model composes, runs, trains one step, and differs from the others."""

import pytest
import torch
from hydra import compose, initialize
from hydra.utils import instantiate

from cloudml.models import count_parameters

MODELS = ["cnn", "cnn_spatial", "cnn_spatial_temporal", "cnn_spatial_multiscale", "transformer"]


def build(name: str) -> torch.nn.Module:
    with initialize(config_path="../conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"model={name}"])
    return instantiate(cfg.model, in_channels=1, frames=3, image_size=(32, 32), n_scalars=2)


@pytest.mark.parametrize("name", MODELS)
def test_model_maps_frames_and_scalars_to_one_height_per_sample(name):
    torch.manual_seed(0)
    model = build(name)
    images, scalars = torch.randn(5, 3, 1, 32, 32), torch.randn(5, 2)
    out = model(images, scalars)
    assert out.shape == (5,) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert not torch.allclose(model(images, scalars + 1.0), out)  # scalars condition the features (FiLM)


def test_ablations_are_distinct_architectures():
    models = {name: build(name) for name in MODELS}
    parts = {name: frozenset(n for n, _ in m.named_children()) for name, m in models.items()}
    assert len(set(parts.values())) == len(MODELS), parts
    counts = {name: count_parameters(m) for name, m in models.items()}
    assert counts["cnn"] < counts["cnn_spatial"] < counts["cnn_spatial_temporal"]
    assert max(counts.values()) < 200_000  # the default sweep must fit a CPU
