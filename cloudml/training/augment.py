"""Random transforms of training batches that change how a scene looks, never what it measures.

Every transform keeps the two things a height is retrieved from: the parallax between
consecutive frames (the aircraft moves along +x, the frame's width) and the texture of the
cloud field; and none of them touches the target. A flight's own look (its brightness level,
its pixel noise, the exact solar angles of each sample) is what a network memorises flights by;
jittering it leaves the per-sample signal as the cheaper thing to learn.

    shift            translate all frames together by one random (dy, dx) a batch, wrapping round
    flip_across      mirror all frames across the track (rows reversed): the parallax is unchanged
    flip_along       mirror along the track and reverse the frames' order: the scene moves the same way
    gain             brightness × U(1 − gain, 1 + gain) a sample (illumination; frame contrast is kept)
    noise            + white pixel noise of sd U(0, noise) a sample, in the frames' units
    scalar_jitter    + N(0, scalar_jitter²) to every normalised scalar (in training-set sds)

The mirrors change the scene's handedness against the sun: on data whose shadows carry the
solar azimuth they make the azimuth scalar inconsistent with the frames (the built-in data has no
shadows). Randomness comes from a generator seeded by (seed, epoch, batch, rank), so a resumed run
augments its batches exactly as an uninterrupted one.
"""

from __future__ import annotations

import torch

from cloudml.errors import CloudMLError


class Augment:
    """The transforms above, applied to a batch dict of normalised tensors (images (B, T, C, H, W))."""

    def __init__(self, shift: bool = False, flip_across: bool = False, flip_along: bool = False, gain: float = 0.0,
                 noise: float = 0.0, scalar_jitter: float = 0.0, seed: int = 0):  # fmt: skip
        for name, value in (("gain", gain), ("noise", noise), ("scalar_jitter", scalar_jitter)):
            if not 0 <= value < (1 if name == "gain" else float("inf")):
                bound = "0 <= gain < 1" if name == "gain" else f"{name} >= 0"
                raise CloudMLError(f"augment.{name}={value!r}: expected {bound}")
        self.shift, self.flip_across, self.flip_along = bool(shift), bool(flip_across), bool(flip_along)
        self.gain, self.noise, self.scalar_jitter, self.seed = float(gain), float(noise), float(scalar_jitter), int(seed)
        self.image_mean, self.image_std = torch.zeros(1), torch.ones(1)  # per channel (`set_normalization`)

    @property
    def active(self) -> bool:
        return any((self.shift, self.flip_across, self.flip_along, self.gain, self.noise, self.scalar_jitter))

    def set_normalization(self, mean: list, std: list) -> None:
        """The training split's frame mean and sd per channel: gain and noise act in the frames' own units."""
        self.image_mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, 1, -1, 1, 1)
        self.image_std = torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-8).reshape(1, 1, -1, 1, 1)

    def __call__(self, batch: dict, epoch: int, batch_idx: int, rank: int = 0) -> dict:
        """`batch` transformed: the same (seed, epoch, batch, process rank) always give the same draws."""
        if not self.active:
            return batch
        images, scalars = batch["images"], batch["scalars"]
        gen = torch.Generator().manual_seed(hash((self.seed, int(epoch), int(batch_idx), int(rank))) & (2**63 - 1))
        mean, std = self.image_mean.to(images.device), self.image_std.to(images.device)
        B = len(images)

        def uniform(*shape) -> torch.Tensor:
            return torch.rand(*shape, generator=gen).to(images.device, images.dtype)

        if self.shift:
            H, W = images.shape[-2:]
            dy, dx = (int(torch.randint(n, (1,), generator=gen)) for n in (H, W))
            images = torch.roll(images, (dy, dx), (-2, -1))
        if self.flip_across:
            images = torch.where(uniform(B, 1, 1, 1, 1) < 0.5, images.flip(-2), images)
        if self.flip_along:
            images = torch.where(uniform(B, 1, 1, 1, 1) < 0.5, images.flip(-1).flip(1), images)
        if self.gain:
            g = 1 + self.gain * (2 * uniform(B, 1, 1, 1, 1) - 1)
            images = g * images + (g - 1) * (mean / std)  # g × raw frames, in normalised units
        if self.noise:
            sd = self.noise / std * uniform(B, 1, 1, 1, 1)
            images = images + sd * torch.randn(images.shape, generator=gen).to(images.device, images.dtype)
        if self.scalar_jitter and scalars.numel():
            scalars = scalars + self.scalar_jitter * torch.randn(scalars.shape, generator=gen).to(scalars.device, scalars.dtype)
        return {**batch, "images": images, "scalars": scalars}
