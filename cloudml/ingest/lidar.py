"""The lidar layer product: profile times, the lowest cloud base and the surface of each profile."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from cloudml.errors import CloudMLError
from cloudml.ingest.lidartime import to_epoch, year_from_name
from cloudml.ingest.options import KM_PER_UNIT, Layout
from cloudml.ingest.rawfiles import check_times, dataset, open_raw, same_rows


@dataclass
class Lidar:
    """One lidar file's profiles, in time order."""

    path: Path
    times: np.ndarray  # (n,) epoch s, UTC
    base_km: np.ndarray  # (n,) lowest valid layer base, NaN where the profile has none
    dem_km: np.ndarray  # (n,)
    surface_km: np.ndarray  # (n,) lidar-detected surface
    n_layers: Optional[np.ndarray]  # (n,), read only when needed

    def __len__(self) -> int:
        return len(self.times)


def lowest_base(bases: np.ndarray, fill: float) -> np.ndarray:
    """Per profile, the lowest finite layer base that is not `fill`; NaN where there is none.
    Layer 0 is not always the lowest (the public program assumed it was)."""
    valid = np.isfinite(bases) & (bases != fill)
    lowest = np.where(valid, bases, np.inf).min(axis=1) if bases.shape[1] else np.full(len(bases), np.inf)
    return np.where(np.isfinite(lowest), lowest, np.nan)


def read_lidar(path: Path, layout: Layout, need_layers: bool) -> Lidar:
    """Read and check the datasets ingest uses; all-fill bases are an error, not an empty flight."""
    key = Layout.key
    with open_raw(path, "lidar") as f:
        day = dataset(f, layout.lidar_time, "decimal day of year", ("n_prof", "k"), key("lidar_time"))
        n = day.shape[0]
        if day.shape[1] == 0:
            raise CloudMLError(
                f"{path}: dataset '{layout.lidar_time}' has shape {day.shape}, expected (n_prof, k) with k >= 1 (column 0 is the time)"
            )
        year = year_from_name(path, layout.lidar_time, layout.lidar_year)
        times = to_epoch(day[:, 0], year)
        check_times(path, layout.lidar_time, times, "profile times (after midnight rollover)")

        bases = dataset(f, layout.lidar_base, "layer base altitudes", ("n_prof", "n_layers"), key("lidar_base"))
        same_rows(f, bases, n, layout.lidar_time)
        base_km = lowest_base(bases[()].astype(np.float64), layout.lidar_fill) * KM_PER_UNIT[layout.lidar_base_units]
        if np.isnan(base_km).all():
            raise CloudMLError(
                f"{path}: dataset '{layout.lidar_base}' holds only fill values ({layout.lidar_fill:g}) or non-finite values, "
                f"expected at least one layer base ({layout.lidar_base_units})"
            )

        def vector(name: str, what: str, scale: float = 1.0) -> np.ndarray:
            dset = dataset(f, getattr(layout, name), what, ("n_prof",), key(name))
            same_rows(f, dset, n, layout.lidar_time)
            return dset[()].astype(np.float64) * scale

        # Surfaces come in metres in the ER-2 files: the ocean rule compares km with km.
        dem = vector("lidar_dem", "DEM surface altitude", KM_PER_UNIT[layout.lidar_dem_units])
        surface = vector("lidar_surface", "lidar surface altitude", KM_PER_UNIT[layout.lidar_surface_units])
        layers = vector("lidar_layers", "number of layers") if need_layers else None
    return Lidar(path, times, base_km, dem, surface, layers)
