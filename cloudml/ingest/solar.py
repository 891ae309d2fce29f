"""Solar zenith and azimuth at each sample's frame time, from the navigation file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloudml.errors import CloudMLError
from cloudml.ingest.camera import Camera
from cloudml.ingest.options import Layout
from cloudml.ingest.rawfiles import check_overlap, check_times, dataset, open_raw, same_rows


@dataclass
class Solar:
    """Angles per sample (degrees; azimuth wrapped to [0, 360)) and how they were found."""

    zenith: np.ndarray
    azimuth: np.ndarray
    valid: np.ndarray  # False: no usable nav value for that frame ('no_solar')
    source: str  # 'nav time' or 'row by row'
    detail: str


def plausible(zenith: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Nav rows holding real angles: finite, zenith within 0..180 and |azimuth| <= 720 (fills are not)."""
    return np.isfinite(zenith) & np.isfinite(azimuth) & (zenith >= 0) & (zenith <= 180) & (np.abs(azimuth) <= 720)


def interpolate(nav_times: np.ndarray, zenith: np.ndarray, azimuth: np.ndarray, at: np.ndarray) -> tuple:
    """Linear interpolation in time; azimuth on the circle (unwrapped first, so 359 -> 1 passes 0, not 180).
    Times outside the nav span are not extrapolated: they come back invalid."""
    unwrapped = np.rad2deg(np.unwrap(np.deg2rad(azimuth)))
    inside = (at >= nav_times[0]) & (at <= nav_times[-1])
    return np.interp(at, nav_times, zenith), np.interp(at, nav_times, unwrapped), inside


def solar_at_frames(path: Path, layout: Layout, camera: Camera, frames: np.ndarray, slack: float) -> Solar:
    """Solar angles at frames `frames` of `camera`: by the nav file's own time if it has the
    `nav.time` dataset, else row i of the nav file for frame i, as the public program did."""
    key = Layout.key
    with open_raw(path, "navigation") as f:
        zen = dataset(f, layout.nav_zenith, "solar zenith, degrees", ("n_nav",), key("nav_zenith"))
        azi = dataset(f, layout.nav_azimuth, "solar azimuth, degrees", ("n_nav",), key("nav_azimuth"))
        same_rows(f, azi, zen.shape[0], layout.nav_zenith)
        if zen.shape[0] == 0:
            raise CloudMLError(f"{path}: dataset '{layout.nav_zenith}' is empty, expected nav rows")
        zenith, azimuth = zen[()].astype(np.float64), azi[()].astype(np.float64)
        has_time = bool(layout.nav_time) and layout.nav_time in f
        if has_time:
            time = dataset(f, layout.nav_time, "nav times, epoch s", ("n_nav",), key("nav_time"))
            same_rows(f, time, zen.shape[0], layout.nav_zenith)
            nav_times = time[()].astype(np.float64)
    good = plausible(zenith, azimuth)
    if has_time:
        check_times(path, layout.nav_time, nav_times, "nav times")
        check_overlap(path, layout.nav_time, nav_times, camera.path, camera.times, slack)
        if good.any():
            z, a, inside = interpolate(nav_times[good], zenith[good], azimuth[good], camera.times[frames])
        else:
            z = a = np.full(len(frames), np.nan)
            inside = np.zeros(len(frames), dtype=bool)
        detail = f"interpolated at the frame times by '{layout.nav_time}'"
        return Solar(z, np.mod(a, 360.0), inside & np.isfinite(z), "nav time", detail)
    # Row by row: nav row i is taken as frame i's, unchecked, as the program did.
    row = np.minimum(frames, len(zenith) - 1)
    valid = (frames < len(zenith)) & good[row]
    why = f"no '{layout.nav_time}' in the nav file" if layout.nav_time else "nav.time is unset"
    detail = f"{why}: nav row i used for frame i, unchecked ({len(zenith)} nav rows, {len(camera)} frames)"
    return Solar(zenith[row], np.mod(azimuth[row], 360.0), valid, "row by row", detail)
