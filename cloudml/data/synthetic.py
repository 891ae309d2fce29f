"""The built-in synthetic data set: a physically motivated generator in the unified HDF5 schema.

Generative model (all heights in km; one camera 20 km above sea level looks down):
- Cloud base height h follows each flight as an AR(1) process (strong autocorrelation)
  around a flight mean drawn from a skewed, bimodal mixture (shallow cumulus near 0.4 km,
  deeper boundary layers near 1.2 km), clipped to 0.1–2.0 km.
- Cloud thickness varies independently of h (log-normal AR(1)); the camera sees the
  cloud *top* z = h + thickness, so part of the height signal is unobservable.
- Frames are band-limited random fields whose cell wavelength is set by the top height
  (cells scale with boundary-layer depth) and by the viewing distance 20 − z; consecutive
  frames are shifted by the parallax of the moving aircraft (larger for closer tops) and
  evolve slightly. Contrast grows with z; brightness follows cos(solar zenith) and a
  per-flight illumination offset; each flight has its own pixel-noise level.
- The file names its default validation flights (attribute `default_val_flights`): 30 % of
  the flights at evenly spaced ranks of flight-mean height, so validation spans the range.
- `texture_coupling` (0–1) scales how strongly the texture follows z: 1 gives a learnable
  signal, small values a weak one under which point-wise losses collapse.

The Bayes reference is E[h | z], the prediction of a model that saw the cloud top exactly
(computed on a grid from the generating distributions). The file stores it per sample
(`oracle_pred`), its R² over the generating process as the attribute `oracle_r2` and over this
file's samples as `oracle_r2_file`. It is a reference for flight-held-out splits, not a bound:
on a split of a few flights a model can beat it by chance, and on time or random splits
flight-level cues (a flight's illumination and noise level tell its mean height) can beat it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from cloudml.atomic import atomic_write

ALTITUDE_KM = 20.0


@dataclass(frozen=True)
class SyntheticConfig:
    n_flights: int = 16
    samples_per_flight: int = 150
    frames: int = 3
    size: int = 32
    seed: int = 0
    texture_coupling: float = 1.0
    thickness_median_km: float = 0.45
    thickness_log_sd: float = 0.6
    within_flight_sd_km: float = 0.25
    autocorrelation: float = 0.97
    version: int = 2  # bump when the generator changes, so caches are not reused


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Unit-variance AR(1) series of length n."""
    out = np.empty(n)
    out[0] = rng.standard_normal()
    noise = rng.standard_normal(n) * np.sqrt(1 - phi**2)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def _flight_means(rng: np.random.Generator, n: int) -> np.ndarray:
    """Skewed, bimodal flight-mean base heights (km)."""
    shallow = rng.random(n) < 0.4
    return np.where(shallow, 0.15 + rng.gamma(2.0, 0.12, n), 0.7 + rng.gamma(3.0, 0.17, n))


def _heights(rng: np.random.Generator, cfg: SyntheticConfig, n_flights: int):
    """Base heights, thicknesses and flight ids of `n_flights` flights."""
    means = _flight_means(rng, n_flights)
    base, thick, flight = [], [], []
    log_median = np.log(cfg.thickness_median_km)
    for f in range(n_flights):
        n = cfg.samples_per_flight
        base.append(np.clip(means[f] + cfg.within_flight_sd_km * _ar1(rng, n, cfg.autocorrelation), 0.1, 2.0))
        thick.append(np.exp(log_median + cfg.thickness_log_sd * _ar1(rng, n, cfg.autocorrelation)))
        flight.append(np.full(n, f))
    return np.concatenate(base), np.concatenate(thick), np.concatenate(flight)


def oracle_predictor(cfg: SyntheticConfig, n_prior_flights: int = 400, grid: int = 400):
    """Return (E[h | z] as a function of the cloud-top height z, its population R²).

    The prior of h is a large independent sample of the generating process; the R² is
    measured on a second independent sample, so it is the process's value, not one file's.
    """
    rng = np.random.default_rng(cfg.seed + 10_000)
    prior_h, _, _ = _heights(rng, cfg, n_prior_flights)
    edges = np.linspace(0.1, 2.0, grid + 1)
    weight, _ = np.histogram(prior_h, bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    centres[0], centres[-1] = 0.1, 2.0  # the clipped mass sits exactly on the bounds
    log_median, s = np.log(cfg.thickness_median_km), cfg.thickness_log_sd

    def predict(z: np.ndarray) -> np.ndarray:
        t = np.clip(z[:, None] - centres[None, :], 1e-9, None)  # thickness if h = centre
        like = np.exp(-((np.log(t) - log_median) ** 2) / (2 * s * s)) / t
        like = like * (z[:, None] > centres[None, :]) * weight[None, :]
        return (like * centres).sum(1) / like.sum(1)

    test_h, test_thickness, _ = _heights(rng, cfg, n_prior_flights)
    population_r2 = 1 - np.mean((test_h - predict(test_h + test_thickness)) ** 2) / np.var(test_h)
    return predict, float(population_r2)


def _frames(rng: np.random.Generator, top: np.ndarray, cfg: SyntheticConfig) -> np.ndarray:
    """(N, T, H, W) unit-variance cloud fields whose texture and parallax follow the top height."""
    size, k = cfg.size, cfg.texture_coupling
    distance = ALTITUDE_KM - top
    # cells widen with boundary-layer depth and look larger the closer the top is to the camera
    wavelength_px = np.clip(2.5 * (1 + 1.5 * top) * ALTITUDE_KM / distance, 2.0, 20.0)
    wavelength_px = (1 - k) * 6.0 + k * wavelength_px
    shift_px = 40.0 * 1.5 / distance  # aircraft moves 1.5 km between frames
    freq = np.fft.fftfreq(size)
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    radius = np.hypot(fx, fy)
    out = np.empty((len(top), cfg.frames, size, size), dtype=np.float32)
    for start in range(0, len(top), 256):
        sl = slice(start, start + 256)
        f0 = (1.0 / wavelength_px[sl])[:, None, None]
        band = np.exp(-((radius[None] - f0) ** 2) / (2 * (0.35 * f0) ** 2))
        spectrum = np.fft.fft2(rng.standard_normal((len(f0), size, size))) * band
        for t in range(cfg.frames):
            phase = np.exp(-2j * np.pi * fx[None] * (shift_px[sl, None, None] * t))  # sub-pixel shift
            evolve = np.fft.fft2(rng.standard_normal((len(f0), size, size))) * band * 0.3
            field = np.fft.ifft2(spectrum * phase + evolve).real
            field /= field.std(axis=(1, 2), keepdims=True) + 1e-12
            out[sl, t] = field
    return out


def generate(cfg: SyntheticConfig) -> dict:
    """All arrays and attributes of a synthetic file (in memory)."""
    rng = np.random.default_rng(cfg.seed)
    base, thick, flight = _heights(rng, cfg, cfg.n_flights)
    top = base + thick
    n = len(base)
    fields = _frames(rng, top, cfg)

    zenith0 = rng.uniform(20, 70, cfg.n_flights)[flight]
    along = np.concatenate([np.linspace(-1, 1, cfg.samples_per_flight)] * cfg.n_flights)
    zenith = zenith0 + 12 * along
    azimuth = (rng.uniform(0, 360, cfg.n_flights)[flight] + 20 * along) % 360
    illumination = rng.normal(0, 0.05, cfg.n_flights)[flight]
    noise_level = rng.uniform(0.05, 0.2, cfg.n_flights)[flight]
    contrast = 0.25 * (1 + cfg.texture_coupling * np.tanh((top - 1.0) / 0.5) * 0.5)
    brightness = np.cos(np.deg2rad(zenith)) * (0.8 + illumination)
    images = brightness[:, None, None, None] * (1 + contrast[:, None, None, None] * fields)
    images += noise_level[:, None, None, None] * rng.standard_normal(images.shape)

    predict, oracle_r2 = oracle_predictor(cfg)
    oracle = predict(top)
    time = np.concatenate([86400.0 * f + 10.0 * np.arange(cfg.samples_per_flight) for f in range(cfg.n_flights)])
    return {
        "images": images.astype(np.float32),
        "scalars": np.stack([zenith, azimuth], axis=1).astype(np.float32),
        "target": base.astype(np.float32),
        "flight": flight.astype(np.int32),
        "time": time,
        "oracle_pred": oracle.astype(np.float32),
        "cloud_top": top.astype(np.float32),
        "oracle_r2": oracle_r2,
        "oracle_r2_file": float(1 - np.mean((base - oracle) ** 2) / np.var(base)),
        "n": n,
    }


def default_val_flights(data: dict, fraction: float = 0.3) -> list:
    """Held-out flights that span the height range: evenly spaced ranks of flight-mean height."""
    flights = np.unique(data["flight"])
    means = np.array([data["target"][data["flight"] == f].mean() for f in flights])
    ranked = flights[np.argsort(means)]
    k = max(1, round(fraction * len(flights)))
    return sorted(int(ranked[int((i + 0.5) * len(flights) / k)]) for i in range(k))


def write(cfg: SyntheticConfig, path: Path) -> Path:
    """Write the synthetic file atomically, chunked and compressed like a user's file."""
    data = generate(cfg)

    def _write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = 1
            f.attrs["generator"] = "cloudml.data.synthetic"
            f.attrs["generator_config"] = json.dumps(asdict(cfg))
            f.attrs["oracle_r2"] = data["oracle_r2"]  # of the generating process
            f.attrs["oracle_r2_file"] = data["oracle_r2_file"]  # of this file's samples
            f.attrs["default_val_flights"] = [f"flight_{i:02d}" for i in default_val_flights(data)]
            chunk = (min(64, data["n"]), *data["images"].shape[1:])
            f.create_dataset("images", data=data["images"], chunks=chunk, compression="gzip", compression_opts=1)
            f.create_dataset("scalars", data=data["scalars"]).attrs["names"] = ["solar_zenith_deg", "solar_azimuth_deg"]
            f.create_dataset("target", data=data["target"]).attrs["units"] = "km"
            flights = f.create_dataset("flight", data=data["flight"])
            flights.attrs["names"] = [f"flight_{i:02d}" for i in range(cfg.n_flights)]
            f.create_dataset("time", data=data["time"]).attrs["units"] = "s"
            f.create_dataset("oracle_pred", data=data["oracle_pred"]).attrs["units"] = "km"
            f.create_dataset("cloud_top", data=data["cloud_top"]).attrs["units"] = "km"

    return atomic_write(path, _write)


def default_cache_dir() -> Path:
    return Path(os.environ.get("CLOUDML_CACHE", Path.home() / ".cache" / "cloudml"))


def ensure_synthetic(cfg: SyntheticConfig, cache_dir: str | Path | None = None) -> Path:
    """Path of the cached synthetic file for `cfg`, generating it once if missing."""
    key = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir or default_cache_dir()) / f"synthetic-{key}.h5"
    if not path.exists():
        write(cfg, path)
    return path
