"""What ingest does and where it looks: the processing options and the raw-file layout."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Optional

from cloudml.errors import CloudMLError


@dataclass(frozen=True)
class Layout:
    """File-name patterns, dataset paths, fill value and units of the raw files (ER-2 defaults).

    Every entry can be changed with `--set KEY=VALUE` (KEY = the field name with its first `_`
    written as `.`, e.g. `camera.signal`), since instrument teams rename things between releases.
    """

    camera_pattern: str = "*IRAI_L1B*.h5"
    camera_signal: str = "Product/Signal"  # (n_frames, rows, cols)
    camera_time: str = "Time/TimeUTC"  # (n_frames,) epoch seconds, UTC
    lidar_pattern: str = "CPL_L2_*Lay*.hdf5"
    lidar_time: str = "layer_descriptor/Profile_Decimal_Julian_Day"  # (n_prof, k): day of year + fraction
    lidar_base: str = "layer_descriptor/Layer_Base_Altitude"  # (n_prof, n_layers)
    lidar_layers: str = "layer_descriptor/Number_Layers"  # (n_prof,), read for --single-layer only
    lidar_surface: str = "layer_descriptor/Lidar_Surface_Altitude"  # (n_prof,)
    lidar_dem: str = "layer_descriptor/DEM_Surface_Altitude"  # (n_prof,)
    lidar_fill: float = -9999.0  # marks an absent layer in lidar.base
    lidar_base_units: str = "km"
    lidar_surface_units: str = "m"
    lidar_dem_units: str = "m"
    lidar_year: Optional[int] = None  # None: from the date that ends the lidar file name
    nav_pattern: str = "CRS_*_nav.hdf"
    nav_zenith: str = "nav/solarZenith"  # degrees
    nav_azimuth: str = "nav/sunAzGrd"  # degrees
    nav_time: str = "nav/time"  # epoch seconds; absent from the file, or set empty: rows are used one per frame

    @staticmethod
    def key(name: str) -> str:
        """The `--set` key of a field: `camera_signal` -> `camera.signal`."""
        return name.replace("_", ".", 1)

    def with_settings(self, settings: list) -> "Layout":
        """A copy with `KEY=VALUE` strings applied; an unknown key or a bad value is a one-line error."""
        by_key = {self.key(f.name): f for f in fields(self)}
        changes = {}
        for item in settings:
            key, sep, value = item.partition("=")
            if not sep or key not in by_key:
                raise CloudMLError(f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(by_key)}")
            name = by_key[key].name
            default = getattr(Layout, name)
            try:
                if isinstance(default, float):
                    changes[name] = float(value)
                elif name == "lidar_year":
                    changes[name] = int(value) if value else None
                else:
                    changes[name] = value
            except ValueError:
                raise CloudMLError(f"--set {item}: expected a number for {key}") from None
        for name in ("lidar_base_units", "lidar_surface_units", "lidar_dem_units"):
            unit = changes.get(name, getattr(self, name))
            if unit not in KM_PER_UNIT:
                raise CloudMLError(f"--set {self.key(name)}={unit}: expected one of {', '.join(KM_PER_UNIT)}")
        return replace(self, **changes)


KM_PER_UNIT = {"km": 1.0, "m": 1e-3}


@dataclass(frozen=True)
class Options:
    """How raw flights become samples; the defaults reproduce the public program's processing,
    except the downsampling (4: a sample of 3 x 110 x 160 trains on a CPU)."""

    frames: int = 3  # T, odd: windows are centred on the matched frame
    downsample: int = 4  # block-mean factor after the crop
    crop_rows: tuple = (40, 480)  # frame rows kept, [start, stop)
    time_tolerance: float = 0.5  # s, largest |lidar time - frame time| matched
    cbh_range: tuple = (0.1, 2.0)  # km, inclusive
    val_flights: tuple = ()  # () -> the rule in cloudml.ingest.pipeline.default_val_flights
    single_layer: bool = False  # keep only profiles with Number_Layers == 1
    ocean_surface_km: float = 0.9  # ocean: DEM == 0 and |lidar surface| <= this
    gap_factor: float = 1.5  # a frame step above this x the file's median step is a gap
    slab_bytes: int = 64 * 2**20  # raw camera frames read at a time, at most
    progress: bool = True  # tqdm bar on stderr (shown on a terminal only)
    layout: Layout = field(default_factory=Layout)
