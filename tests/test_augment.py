import pytest
import torch

from cloudml.errors import CloudMLError
from cloudml.training.augment import Augment

SHIFT_PX = 3  # the scene moves this many pixels along +x from one frame to the next


def _moving_scene(batch: int = 8, frames: int = 3, size: int = 16) -> dict:
    """Frames of one random scene that moves SHIFT_PX along x (the width) each frame."""
    scene = torch.randn(batch, 1, size, size, generator=torch.Generator().manual_seed(0))
    images = torch.stack([torch.roll(scene, SHIFT_PX * t, -1) for t in range(frames)], 1)
    return {"images": images, "scalars": torch.zeros(batch, 2), "target": torch.arange(batch, dtype=torch.float32)}


def _apparent_shift(images: torch.Tensor) -> set:
    """Every sample's shift (px along x) that maps each frame onto the next."""
    shifts = set()
    for sample in images:
        for t in range(len(sample) - 1):
            shifts |= {d for d in range(-8, 9) if torch.equal(torch.roll(sample[t], d, -1), sample[t + 1])}
    return shifts


@pytest.mark.parametrize("transform", ["shift", "flip_across", "flip_along"])
def test_geometric_transforms_keep_the_parallax_between_frames(transform):
    batch = _moving_scene()
    out = Augment(**{transform: True})(batch, epoch=0, batch_idx=0)
    assert not torch.equal(out["images"], batch["images"])  # something was changed...
    assert _apparent_shift(out["images"]) == {SHIFT_PX}  # ...but the scene moves as before
    assert torch.equal(out["target"], batch["target"])


def test_mirroring_along_the_track_without_reversing_time_would_reverse_the_parallax():
    # The reason flip_along reverses the frames: a plain x-mirror makes the scene move backwards.
    assert _apparent_shift(_moving_scene()["images"].flip(-1)) == {-SHIFT_PX}


def test_gain_scales_the_raw_frames_and_keeps_their_contrast():
    mean, std = 2.0, 0.5
    raw = 2.0 + 0.3 * torch.randn(16, 3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    augment = Augment(gain=0.3)
    augment.set_normalization([mean], [std])
    out = augment({"images": (raw - mean) / std, "scalars": torch.zeros(16, 0)}, epoch=1, batch_idx=4)
    out_raw = out["images"] * std + mean
    gain = out_raw.mean((1, 2, 3, 4)) / raw.mean((1, 2, 3, 4))
    assert gain.min() >= 0.7 - 1e-5 and gain.max() <= 1.3 + 1e-5 and gain.std() > 0.05  # a gain per sample
    contrast = lambda x: x.std((1, 2, 3, 4)) / x.mean((1, 2, 3, 4))  # noqa: E731
    assert torch.allclose(contrast(out_raw), contrast(raw), rtol=1e-4)


def test_noise_and_scalar_jitter_have_the_sizes_asked_for():
    augment = Augment(noise=0.1, scalar_jitter=0.3)
    augment.set_normalization([0.0], [0.5])  # noise sd U(0, 0.1) raw = U(0, 0.2) normalised
    batch = {"images": torch.zeros(256, 3, 1, 16, 16), "scalars": torch.zeros(256, 2)}
    out = augment(batch, epoch=0, batch_idx=0)
    per_sample_sd = out["images"].std((1, 2, 3, 4))
    assert 0.0 < per_sample_sd.min() < 0.02 and 0.18 < per_sample_sd.max() < 0.22
    assert out["scalars"].std().item() == pytest.approx(0.3, rel=0.15)


def test_draws_depend_only_on_seed_epoch_and_batch_so_a_resumed_run_augments_alike():
    augment = Augment(shift=True, flip_across=True, flip_along=True, gain=0.2, noise=0.05, scalar_jitter=0.1, seed=7)
    batch = _moving_scene()
    first, again = augment(batch, epoch=2, batch_idx=3), augment(batch, epoch=2, batch_idx=3)
    other = augment(batch, epoch=2, batch_idx=4)
    assert torch.equal(first["images"], again["images"]) and torch.equal(first["scalars"], again["scalars"])
    assert not torch.equal(first["images"], other["images"])


def test_no_transform_leaves_the_batch_itself():
    batch = _moving_scene()
    assert Augment()(batch, epoch=0, batch_idx=0) is batch


@pytest.mark.parametrize("setting", [{"gain": 1.0}, {"gain": -0.1}, {"noise": -1.0}, {"scalar_jitter": -0.5}])
def test_out_of_range_settings_are_refused_in_one_line(setting):
    with pytest.raises(CloudMLError, match=f"augment.{next(iter(setting))}="):
        Augment(**setting)
