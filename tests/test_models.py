"""Every architecture of conf/model is built from its parts, runs, trains, differs from the
others, refuses settings it has no use for, and caps the tokens attention sees at any frame size."""

import pytest
import torch
from hydra import compose, initialize
from hydra.errors import ConfigCompositionException, InstantiationException
from omegaconf import OmegaConf

from cloudml.models import SpaceTokens, capped_grid, count_parameters, shift_correlation
from cloudml.models.build import build_model
from cloudml.models.parallax import DIRECT_MAX_SHIFT

# Exact trainable parameters at 3 x 1 x 32 x 32 frames and 2 scalars (what Table 2's runs train);
# 1,632 of each are the parallax part's (17 shifts -> 32 -> 32).
PARAMETERS = {"cnn": 27_105, "cnn_spatial": 44_065, "cnn_spatial_temporal": 56_769,
              "cnn_spatial_multiscale": 56_865, "transformer": 56_769}  # fmt: skip
PARALLAX = (17 * 32 + 32) + (32 * 32 + 32)
MODELS = list(PARAMETERS)


def model_node(name: str, *overrides: str):
    with initialize(config_path="../conf", version_base="1.3"):
        return compose("config", overrides=[f"model={name}", *overrides]).model


def build(name: str, *overrides: str, frame_shape=(3, 1, 32, 32), n_scalars=2) -> torch.nn.Module:
    return build_model(model_node(name, *overrides), frame_shape=frame_shape, n_scalars=n_scalars)


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


def test_each_architecture_has_its_exact_parameter_count_and_its_own_structure():
    models = {name: build(name) for name in MODELS}
    assert {name: count_parameters(m) for name, m in models.items()} == PARAMETERS
    structure = {name: tuple((path, type(m).__name__) for path, m in model.named_modules()) for name, model in models.items()}
    assert len(set(structure.values())) == len(MODELS)  # same counts (temporal, transformer) yet different models
    assert type(models["transformer"].space).__name__ == "Unchanged"  # every token reaches the joint transformer
    assert type(models["cnn_spatial_multiscale"].windows).__name__ == "MultiScaleTokens"


def test_the_same_seed_gives_the_same_weights_whatever_the_order_of_the_config_keys():
    node = model_node("cnn_spatial_multiscale")
    shuffled = OmegaConf.create({key: node[key] for key in reversed(list(node.keys()))})
    weights = []
    for n in (node, shuffled):
        torch.manual_seed(0)
        weights.append(torch.cat([p.detach().flatten() for p in build_model(n, (3, 1, 32, 32), 2).parameters()]))
    assert torch.equal(*weights)


def test_without_scalars_there_is_no_film():
    model = build("cnn", n_scalars=0)
    assert model.film is None and count_parameters(model) == PARAMETERS["cnn"] - (2 * 64 + 64)
    assert model(torch.randn(2, 3, 1, 32, 32), torch.empty(2, 0)).shape == (2,)


@pytest.mark.parametrize("overrides, error", [
    (["model=cnn", "model.layers=1"], ConfigCompositionException),  # cnn has no attention: no layers to set
    (["model=cnn_spatial", "model.layers=2"], ConfigCompositionException),  # nor attention across frames
    (["model=transformer", "+model.space.layers=1"], InstantiationException),  # no per-frame stage to deepen
    (["model=transformer", "+model.time.mixer.window=3"], InstantiationException),
])  # fmt: skip
def test_a_setting_an_architecture_has_no_use_for_is_an_error(overrides, error):
    with pytest.raises(error):
        build(overrides[0].split("=")[1], *overrides[1:])


def test_a_part_the_model_does_not_have_is_an_error():
    node = model_node("cnn", "+model.extra._target_=cloudml.models.MeanPool")
    with pytest.raises(TypeError, match="extra not a part of CloudBaseNet"):
        build_model(node, (3, 1, 32, 32), 2)


@pytest.mark.parametrize("size, cap, grid", [
    ((4, 4), 64, (4, 4)),  # under the cap: unchanged (today's 32 x 32 frames)
    ((14, 20), 64, (6, 10)),  # 110 x 160 frames
    ((55, 80), 64, (6, 10)),  # 440 x 640 frames
    ((16, 16), 64, (8, 8)),
    ((1, 10_000), 64, (1, 64)),
    ((10_000, 1), 64, (64, 1)),
    ((3, 2), 1, (1, 1)),
])  # fmt: skip
def test_the_token_grid_keeps_the_aspect_ratio_under_the_cap(size, cap, grid):
    assert capped_grid(size, cap) == grid


def test_tokens_over_the_cap_are_block_means_of_the_feature_map():
    tokens = SpaceTokens((8, 12), dim=2, max_tokens=24)  # 8 x 12 -> 4 x 6: 2 x 2 blocks
    fmap = torch.randn(3, 2, 8, 12)
    blocks = fmap.reshape(3, 2, 4, 2, 6, 2).mean((3, 5)).flatten(2).transpose(1, 2)  # (3, 24, 2)
    assert torch.allclose(tokens(fmap) - tokens.pos_space, blocks, atol=1e-6)
    under = SpaceTokens((8, 12), dim=2, max_tokens=96)
    assert torch.equal(under(fmap), fmap.flatten(2).transpose(1, 2) + under.pos_space)  # no pooling under the cap


@pytest.mark.parametrize("name", MODELS)
def test_real_frame_sizes_give_a_bounded_model(name):
    real = build(name, frame_shape=(3, 1, 110, 160))  # 14 x 20 feature map: pooled to 6 x 10
    full = build(name, frame_shape=(3, 1, 440, 640))  # 55 x 80 feature map: pooled to 6 x 10
    assert real.tokens.grid == full.tokens.grid == (6, 10)
    # 60 token positions instead of 16; the parallax part tries a quarter of the width each way
    assert real.parallax.max_shift == 40 and full.parallax.max_shift == 160
    assert count_parameters(real) == PARAMETERS[name] + (60 - 16) * 32 + (81 - 17) * 32
    assert count_parameters(full) == PARAMETERS[name] + (60 - 16) * 32 + (321 - 17) * 32
    odd = build(name, frame_shape=(2, 1, 37, 53))  # non-square, not divisible by 8: 5 x 7 tokens
    assert odd.tokens.grid == (5, 7) and odd(torch.randn(2, 2, 1, 37, 53), torch.randn(2, 2)).shape == (2,)
    assert real(torch.randn(1, 3, 1, 110, 160), torch.randn(1, 2)).shape == (1,)


def moving_scene(shift: float, frames: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(1, frames, 1, size, size): one band-limited random field moved `shift` pixels along x (the
    track) from each frame to the next, by a phase ramp (so shifts may be fractions of a pixel)."""
    gen = torch.Generator().manual_seed(seed)
    freq = torch.fft.fftfreq(size)
    fy, fx = torch.meshgrid(freq, freq, indexing="ij")
    spectrum = torch.fft.fft2(torch.randn(size, size, generator=gen)) * torch.exp(-((fx.hypot(fy) - 0.15) ** 2) / 0.005)
    moved = [torch.fft.ifft2(spectrum * torch.exp(-2j * torch.pi * fx * shift * t)).real for t in range(frames)]
    return torch.stack(moved)[None, :, None]


@pytest.mark.parametrize("shift", [-5, 0, 2, 3, 7])
def test_the_shift_correlation_peaks_at_the_parallax_between_frames(shift):
    curve = shift_correlation(moving_scene(shift), max_shift=8)[0]
    assert curve.shape == (17,) and int(curve.argmax()) - 8 == shift and curve.max() > 0.9


def test_the_shift_correlation_resolves_fractions_of_a_pixel_and_ignores_brightness():
    curves = [shift_correlation(moving_scene(s), max_shift=8)[0] for s in (3.0, 3.25, 3.5)]
    # the peak stays at 3 while the curve's mass moves towards 4, step by step
    assert all(int(c.argmax()) == 11 for c in curves[:2])
    assert curves[0][12] < curves[1][12] < curves[2][12] and curves[0][10] > curves[1][10] > curves[2][10]
    scene = moving_scene(3.25)
    assert torch.allclose(shift_correlation(5 + 0.3 * scene, 8), curves[1][None], atol=1e-3)


def test_wide_shift_ranges_give_the_same_curve_by_fft():
    frames = torch.randn(2, 3, 2, 12, 40)  # two channels
    direct = shift_correlation(frames, DIRECT_MAX_SHIFT)  # shift by shift
    wide = shift_correlation(frames, DIRECT_MAX_SHIFT + 10)  # by FFT
    assert torch.allclose(wide[:, 10:-10], direct, atol=1e-5)
    assert int(shift_correlation(moving_scene(-23, size=64), 30)[0].argmax()) - 30 == -23


def test_every_architecture_measures_the_parallax_and_can_go_without_it():
    for name in MODELS:
        model, bare = build(name), build(name, "~model.parallax")
        assert type(model.parallax).__name__ == "ParallaxFeatures" and bare.parallax is None
        assert count_parameters(model) - count_parameters(bare) == PARALLAX
    assert build("cnn").parallax.max_shift == 8 and build("cnn", frame_shape=(3, 1, 8, 8)).parallax.max_shift == 2
    assert build("cnn", "model.parallax.max_shift=5").parallax.max_shift == 5
    for bad in (40, 32, 0):  # 0 is not null: it does not fall back to a quarter of the width
        with pytest.raises(ValueError, match=f"max_shift={bad}: expected an integer from 1 to less than the frame width 32"):
            build("cnn", f"model.parallax.max_shift={bad}")
    with pytest.raises(ValueError, match="at least 2 frames"):
        build("cnn", frame_shape=(1, 1, 32, 32))
