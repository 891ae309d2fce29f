"""Small raw ER-2 flights in exactly the formats of ER2_FORMATS.md, and the truth planted in them.

`write_flight(root, spec)` writes the folder `root/<spec.name>/` with three files:

    <CAMPAIGN>_IRAI_L1B_Rev-_<yyyymmdd>.h5          camera
        Product/Signal  (n_frames, rows, cols) float32   frame k: see `frame_pixels(spec, k)`
        Time/TimeUTC    (n_frames,) float64, epoch s     t0 + k * step, + `extra` s after given frames
    CPL_L2_V1-02_01kmLay_259015_<ddmonyy>.hdf5       lidar (the name's date gives the year)
        layer_descriptor/Profile_Decimal_Julian_Day  (n_prof, 2) float64  day of year + fraction, UTC
                                                     (column 1 = column 0 + 1e-5: ingest uses column 0)
        layer_descriptor/Layer_Base_Altitude         (n_prof, 3) float32, km, fill -9999
        layer_descriptor/Number_Layers               (n_prof,) int32, the non-fill layers
        layer_descriptor/Lidar_Surface_Altitude      (n_prof,) float32, m
        layer_descriptor/DEM_Surface_Altitude        (n_prof,) float32, m
    CRS_<yyyymmdd>_nav.hdf                           navigation (HDF5 despite the extension)
        nav/solarZenith, nav/sunAzGrd (n_nav,) float64, degrees; nav/IWG_lat, nav/IWG_lon
        nav/time (n_nav,) float64, epoch s: only with spec.nav_time; its rows are then every 2 s,
        offset from the frames (so angles must be interpolated); without it, row i is frame i.

Planted truth: each `Profile` sits at `offset` s from frame `frame` (or at absolute `at`) and
says what ingest must make of it under the default options (`expect`: 'sample' or a drop
reason). The solar angles follow `zenith(t)` and `azimuth(t)` exactly (azimuth crosses 360°).
With `stuck_day`, profiles after midnight keep the previous integer day (the rollover that
ingest must undo).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import h5py
import numpy as np

FILL = -9999.0
LAYERS = 3


@dataclass
class Profile:
    frame: int = 0
    offset: float = 0.0  # s from the frame's time
    bases: tuple = (1.0,)  # km, layer order as written (not necessarily lowest first); None -> fill
    dem: float = 0.0  # m
    surface: float = 20.0  # m (ocean: |surface| <= 900 m)
    expect: str = "sample"
    at: Optional[float] = None  # absolute epoch s instead of frame + offset

    @property
    def target(self) -> float:
        """The lowest valid base, km (what ingest must store)."""
        return min(b for b in self.bases if b is not None)


@dataclass
class FlightSpec:
    name: str = "10Feb25"
    t0: float = datetime(2025, 2, 10, 18, 0, 0, tzinfo=timezone.utc).timestamp()
    n_frames: int = 40
    rows: int = 48
    cols: int = 64
    step: float = 1.0
    extra: dict = field(default_factory=dict)  # frame k -> seconds added to every frame after k
    profiles: list = field(default_factory=list)
    nav_time: bool = True
    stuck_day: bool = False
    nan_frames: tuple = ()  # frames holding one NaN pixel
    campaign: str = "GLOVE2025"
    seed: int = 0

    def frame_times(self) -> np.ndarray:
        k = np.arange(self.n_frames)
        shift = sum(np.where(k > after, extra, 0.0) for after, extra in self.extra.items()) if self.extra else 0.0
        return self.t0 + k * self.step + shift

    def time_of(self, p: Profile) -> float:
        return p.at if p.at is not None else float(self.frame_times()[p.frame]) + p.offset

    @property
    def date(self) -> datetime:
        return datetime.fromtimestamp(self.t0, tz=timezone.utc)

    def samples(self) -> list:
        """The profiles that must become samples, in time order."""
        return sorted((p for p in self.profiles if p.expect == "sample"), key=self.time_of)

    def dropped(self) -> dict:
        """reason -> how many profiles it must drop."""
        out: dict = {}
        for p in self.profiles:
            if p.expect != "sample":
                out[p.expect] = out.get(p.expect, 0) + 1
        return out


def zenith(spec: FlightSpec, t):
    return 40.0 + 0.01 * (np.asarray(t) - spec.t0)


def azimuth(spec: FlightSpec, t):
    """Crosses north 10 s after t0: naive interpolation of wrapped values would pass 180°."""
    return np.mod(355.0 + 0.5 * (np.asarray(t) - spec.t0), 360.0)


def frame_pixels(spec: FlightSpec, k: int) -> np.ndarray:
    """Frame k's pixels (rows, cols) float32: uniform noise in 0..100 plus 1000 k."""
    rng = np.random.default_rng([spec.seed, k])
    frame = (rng.uniform(0, 100, (spec.rows, spec.cols)) + 1000.0 * k).astype(np.float32)
    if k in spec.nan_frames:
        frame[spec.rows // 2, spec.cols // 2] = np.nan
    return frame


def decimal_day(spec: FlightSpec, t: np.ndarray) -> np.ndarray:
    """Epoch s -> day of year + fraction; with `stuck_day` the integer day never advances past the first."""
    new_year = datetime(spec.date.year, 1, 1, tzinfo=timezone.utc).timestamp()
    day = (np.asarray(t) - new_year) / 86400.0 + 1.0
    if spec.stuck_day:
        first = np.floor(day[0])
        day = first + (day - np.floor(day))  # the fraction wraps to ~0, the day stays
    return day


def camera_path(root: Path, spec: FlightSpec) -> Path:
    return root / spec.name / f"{spec.campaign}_IRAI_L1B_Rev-_{spec.date:%Y%m%d}.h5"


def lidar_path(root: Path, spec: FlightSpec) -> Path:
    d = spec.date
    return root / spec.name / f"CPL_L2_V1-02_01kmLay_259015_{d:%d}{d:%b}{d:%y}.hdf5".replace(f"{d:%b}", f"{d:%b}".lower())


def nav_path(root: Path, spec: FlightSpec) -> Path:
    return root / spec.name / f"CRS_{spec.date:%Y%m%d}_nav.hdf"


def write_flight(root: Path, spec: FlightSpec) -> Path:
    """Write the flight's three files under root/spec.name; return the folder."""
    folder = root / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    times = spec.frame_times()
    with h5py.File(camera_path(root, spec), "w") as f:
        frames = np.stack([frame_pixels(spec, k) for k in range(spec.n_frames)])
        f.create_dataset("Product/Signal", data=frames, chunks=(8, spec.rows, spec.cols), compression="gzip", compression_opts=1)
        f["Time/TimeUTC"] = times

    profiles = sorted(spec.profiles, key=spec.time_of)
    t = np.array([spec.time_of(p) for p in profiles], dtype=np.float64)
    bases = np.full((len(profiles), LAYERS), FILL, dtype=np.float32)
    for i, p in enumerate(profiles):
        bases[i, : len(p.bases)] = [FILL if b is None else b for b in p.bases]
    with h5py.File(lidar_path(root, spec), "w") as f:
        g = f.create_group("layer_descriptor")
        day = decimal_day(spec, t)
        g["Profile_Decimal_Julian_Day"] = np.stack([day, day + 1e-5], axis=1)
        g["Layer_Base_Altitude"] = bases
        g["Number_Layers"] = (bases != FILL).sum(axis=1).astype(np.int32)
        g["Lidar_Surface_Altitude"] = np.array([p.surface for p in profiles], dtype=np.float32)
        g["DEM_Surface_Altitude"] = np.array([p.dem for p in profiles], dtype=np.float32)

    nav_t = np.arange(times[0] - 5.3, times[-1] + 6.0, 2.0) if spec.nav_time else times
    with h5py.File(nav_path(root, spec), "w") as f:
        f["nav/solarZenith"] = zenith(spec, nav_t)
        f["nav/sunAzGrd"] = azimuth(spec, nav_t)
        f["nav/IWG_lat"] = np.linspace(30.0, 31.0, len(nav_t))
        f["nav/IWG_lon"] = np.linspace(-120.0, -121.0, len(nav_t))
        if spec.nav_time:
            f["nav/time"] = nav_t
    return folder


def standard_profiles() -> list:
    """23 profiles for `standard_flight`'s 40 frames: 10 samples and every drop reason but
    multi_layer, no_solar and bad_pixels (a test can plant those)."""
    P = Profile
    return [
        P(0, 0.1, (0.8,), expect="window_edge"),  # window -1..1 leaves the file
        P(1, -0.2, (0.9,)),  # window 0..2: the first usable one
        P(3, 0.3, (1.2,)),
        P(5, 0.0, (1.5, 0.7)),  # two layers: the lower base (layer 1) is the target
        P(7, 0.1, (None, None, None), expect="no_base"),  # every layer is the fill value
        P(9, -0.1, (0.6,), dem=120.0, expect="not_ocean"),  # land
        P(11, 0.2, (0.6,), surface=950.0, expect="not_ocean"),  # 0.95 km > 0.9 km
        P(12, 0.2, (0.5,), surface=-30.0),  # |-30 m| = 0.03 km: ocean (metres are not km)
        P(13, 0.0, (2.5,), expect="out_of_range"),
        P(14, 0.0, (0.05,), expect="out_of_range"),
        P(15, 0.0, (2.0,)),  # the range is inclusive
        P(17, -0.1, (1.1,)),  # two on frame 17: this one is closer (and earlier)
        P(17, 0.4, (1.6,), expect="same_frame"),
        P(20, 0.25, (None, 0.4, 1.8)),  # layer 0 is fill, layer 1 the lowest
        P(25, 0.6, (1.0,), expect="no_frame"),  # frames 25 and 26 are 1.2 s apart: 0.6 s from both
        P(28, 0.45, (1.3,)),
        P(32, 0.0, (0.9,), expect="window_gap"),  # window 31..33 spans the 4 s step 32 -> 33
        P(33, 0.0, (0.9,), expect="window_gap"),  # window 32..34 too
        P(34, 0.1, (0.95,)),  # window 33..35: after the gap
        P(38, 0.0, (1.4,)),  # window 37..39: the last usable one
        P(39, 0.0, (1.4,), expect="window_edge"),
        P(at=0.0, bases=(1.0,), expect="no_frame"),  # placeholder times: see standard_flight
        P(at=0.0, bases=(1.0,), expect="no_frame"),
    ]


def standard_flight(name: str = "10Feb25", **overrides) -> FlightSpec:
    """40 frames at 1 s, a 1.2 s step after frame 25 and a 4 s gap after frame 32, with
    `standard_profiles`; two of them lie 30 s before the first and after the last frame."""
    spec = FlightSpec(name=name, extra={25: 0.2, 32: 3.0}, **overrides)
    profiles = standard_profiles()
    times = spec.frame_times()
    profiles[-2].at, profiles[-1].at = float(times[0] - 30.0), float(times[-1] + 30.0)
    spec.profiles = profiles
    return spec


def midnight_flight(name: str = "30Oct24") -> FlightSpec:
    """30 frames from 23:59:45 UTC across midnight; the lidar's integer day does not advance."""
    t0 = datetime(2024, 10, 30, 23, 59, 45, tzinfo=timezone.utc).timestamp()
    frames = (3, 8, 13, 14, 16, 17, 20, 25)  # midnight falls between frames 14 and 15
    profiles = [Profile(k, 0.1 * (i % 3) - 0.1, (0.3 + 0.1 * i,)) for i, k in enumerate(frames)]
    return FlightSpec(name=name, t0=t0, n_frames=30, profiles=profiles, stuck_day=True, campaign="WHYMSIE2024", seed=1)
