"""One flight's plan: which lidar profiles become samples, with their frames, target and angles.

Reads everything but the pixels, so every raw file of every flight is checked before the
output is started; the pixels are read afterwards, by the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloudml.errors import CloudMLError
from cloudml.ingest.camera import Camera, read_camera
from cloudml.ingest.lidar import read_lidar
from cloudml.ingest.matching import closest_per_frame, nearest_frames
from cloudml.ingest.options import Layout, Options
from cloudml.ingest.rawfiles import check_overlap, find_file
from cloudml.ingest.reasons import FILTERS, REASONS
from cloudml.ingest.reduce import reduced_shape
from cloudml.ingest.solar import solar_at_frames
from cloudml.ingest.windows import centred_windows, gap_steps

ROLES = {"camera": "camera", "lidar": "lidar", "nav": "navigation"}


@dataclass
class FlightPlan:
    """The samples one flight will give, in time order, and what was dropped on the way."""

    name: str
    files: dict  # role -> Path
    camera: Camera
    profiles: int
    dropped: dict  # reason -> count, every reason present
    windows: np.ndarray  # (n, T) frame indices into the camera file
    target: np.ndarray  # (n,) km
    dt: np.ndarray  # (n,) s, lidar time - frame time
    zenith: np.ndarray  # (n,) degrees
    azimuth: np.ndarray  # (n,) degrees in [0, 360)
    solar_source: str
    solar_detail: str
    frame_shape: tuple  # (H, W) after crop and downsampling

    @property
    def kept(self) -> int:
        """Profiles that pass the lidar filters."""
        return self.profiles - sum(self.dropped[r] for r in FILTERS)

    @property
    def time(self) -> np.ndarray:
        """(n,) epoch s of each sample's centre frame."""
        return self.camera.times[self.windows[:, self.windows.shape[1] // 2]]


def plan_flight(directory: Path, options: Options) -> FlightPlan:
    """Find and check the flight's three files, convert, filter, match and window its profiles."""
    layout = options.layout
    files = {
        role: find_file(directory, getattr(layout, f"{role}_pattern"), what, Layout.key(f"{role}_pattern"))
        for role, what in ROLES.items()
    }
    camera = read_camera(files["camera"], layout, options.crop_rows)
    rows = options.crop_rows[1] - options.crop_rows[0]
    height, width = reduced_shape(rows, camera.cols, options.downsample)
    if height == 0 or width == 0:
        raise CloudMLError(f"{camera.path}: --downsample {options.downsample} leaves no pixel of the {rows} x {camera.cols} crop")
    lidar = read_lidar(files["lidar"], layout, options.single_layer)
    check_overlap(lidar.path, layout.lidar_time, lidar.times, camera.path, camera.times, options.time_tolerance)

    reason = np.full(len(lidar), "", dtype=object)

    def drop(mask: np.ndarray, why: str, where: np.ndarray = None) -> None:
        """Mark `why` on the profiles (of `where`, default all) that `mask` selects and no rule dropped yet."""
        rows = np.arange(len(reason)) if where is None else where
        rows = rows[mask & (reason[rows] == "")]
        reason[rows] = why

    base = lidar.base_km
    drop(np.isnan(base), "no_base")
    drop(~((lidar.dem_km == 0) & (np.abs(lidar.surface_km) <= options.ocean_surface_km)), "not_ocean")
    drop(~((base >= options.cbh_range[0]) & (base <= options.cbh_range[1])), "out_of_range")
    if options.single_layer:
        drop(lidar.n_layers != 1, "multi_layer")

    frame, dt = nearest_frames(camera.times, lidar.times)
    drop(np.abs(dt) > options.time_tolerance, "no_frame")
    alive = np.flatnonzero(reason == "")
    drop(~closest_per_frame(frame[alive], np.abs(dt[alive])), "same_frame", alive)
    alive = np.flatnonzero(reason == "")
    windows, why = centred_windows(frame[alive], len(camera), options.frames, gap_steps(camera.times, options.gap_factor))
    for name in ("window_edge", "window_gap"):
        drop(why == name, name, alive)
    usable = why == ""
    alive, windows = alive[usable], windows[usable]
    solar = solar_at_frames(files["nav"], layout, camera, frame[alive], options.time_tolerance)
    drop(~solar.valid, "no_solar", alive)
    ok = solar.valid

    return FlightPlan(
        name=directory.name,
        files=files,
        camera=camera,
        profiles=len(lidar),
        dropped={r: int((reason == r).sum()) for r in REASONS},
        windows=windows[ok],
        target=base[alive[ok]],
        dt=dt[alive[ok]],
        zenith=solar.zenith[ok],
        azimuth=solar.azimuth[ok],
        solar_source=solar.source,
        solar_detail=solar.detail,
        frame_shape=(height, width),
    )
