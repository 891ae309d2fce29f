"""The unified file's datasets: frames streamed in as they are reduced, then the small arrays."""

from __future__ import annotations

import h5py
import numpy as np
from tqdm import tqdm

from cloudml.ingest.camera import frame_reader, slab_frames, stream_windows
from cloudml.ingest.options import Options
from cloudml.ingest.reduce import block_mean

FLUSH_BYTES = 16 * 2**20  # reduced samples buffered before each append to 'images'
SCALAR_NAMES = ["solar_zenith_deg", "solar_azimuth_deg"]


def create_images(f: h5py.File, frames: int, shape: tuple) -> h5py.Dataset:
    """An empty, growable (0, T, H, W) float32 'images' dataset, one sample per compressed chunk."""
    return f.create_dataset(
        "images", shape=(0, frames, *shape), maxshape=(None, frames, *shape), dtype=np.float32,
        chunks=(1, frames, *shape), compression="gzip", compression_opts=4, shuffle=True,
    )  # fmt: skip


def append(images: h5py.Dataset, batch: list) -> None:
    if batch:
        n = images.shape[0]
        images.resize(n + len(batch), axis=0)
        images[n:] = np.stack(batch)
        batch.clear()


def stream_images(images: h5py.Dataset, plans: list, options: Options) -> list:
    """Append every plan's windows of reduced frames; return per plan the mask of samples written.
    A window holding a non-finite pixel is dropped and counted as 'bad_pixels'."""
    written = []
    per_flush = max(1, FLUSH_BYTES // (int(np.prod(images.shape[1:])) * 4))
    bar = tqdm(total=sum(len(p.windows) for p in plans), unit="sample", leave=False, disable=None if options.progress else True)
    with bar:
        for plan in plans:
            bar.set_description(plan.name)
            ok = np.zeros(len(plan.windows), dtype=bool)
            batch: list = []
            longest = slab_frames(plan.camera, options.crop_rows, options.slab_bytes)
            with frame_reader(plan.camera, options.layout, options.crop_rows, options.slab_bytes) as read:
                reduced = lambda start, stop: block_mean(read(start, stop), options.downsample)
                for i, window in stream_windows(plan.windows, reduced, longest):
                    ok[i] = np.isfinite(window).all()
                    if ok[i]:
                        batch.append(window)
                    if len(batch) >= per_flush:
                        append(images, batch)
                    bar.update(1)
                append(images, batch)
            plan.dropped["bad_pixels"] = int((~ok).sum())
            written.append(ok)
    return written


def write_arrays(f: h5py.File, plans: list, written: list, names: list) -> None:
    """'scalars', 'target', 'flight', 'time' (+ 'frame_index', 'delta_t' for audits) of the written
    samples; `plans` are the flights with samples written, `names[i]` the name of flight id i."""
    pick = lambda get: np.concatenate([get(p)[ok] for p, ok in zip(plans, written)])
    scalars = np.stack([pick(lambda p: p.zenith), pick(lambda p: p.azimuth)], axis=1)
    f.create_dataset("scalars", data=scalars.astype(np.float32)).attrs["names"] = SCALAR_NAMES
    f.create_dataset("target", data=pick(lambda p: p.target).astype(np.float32)).attrs["units"] = "km"
    ids = pick(lambda p: np.full(len(p.windows), names.index(p.name)))
    f.create_dataset("flight", data=ids.astype(np.int32)).attrs["names"] = names
    f.create_dataset("time", data=pick(lambda p: p.time)).attrs["units"] = "s since 1970-01-01 UTC"
    centre = pick(lambda p: p.windows[:, p.windows.shape[1] // 2])
    f.create_dataset("frame_index", data=centre.astype(np.int32)).attrs["meaning"] = "centre frame's row in its camera file"
    f.create_dataset("delta_t", data=pick(lambda p: p.dt).astype(np.float32)).attrs["units"] = "s, lidar time - frame time"
