"""Fake run directories and HDF5 files in the formats training writes, with chosen numbers.

For tests and benchmarks of the analysis (and for trying ``analyze.py`` without training):
predictions are built to have an exact correlation ρ and variance ratio v with the target,
so their R² is exactly 2ρ√v − v.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cloudml import rundir
from cloudml.analysis.scores import regression_scores
from cloudml.atomic import write_text
from cloudml.rundir import RunMeta, Verdicts


def fake_predictions(target: np.ndarray, corr: float, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Predictions with corr(pred, y) = ``corr`` and var(pred)/var(y) = ``ratio`` exactly
    (unbiased: mean(pred) = mean(y))."""
    y = np.asarray(target, float)
    zy = (y - y.mean()) / y.std()
    noise = rng.standard_normal(y.size)
    noise -= noise.mean() + (noise @ zy) / y.size * zy  # orthogonal to 1 and to y
    noise /= noise.std()
    return y.mean() + np.sqrt(ratio) * y.std() * (corr * zy + np.sqrt(1 - corr**2) * noise)


def write_h5(path: Path, images: np.ndarray, target: np.ndarray, scalars: np.ndarray | None = None,
             flight: np.ndarray | None = None, time: np.ndarray | None = None, oracle_r2=None) -> Path:
    """An HDF5 file in the unified schema (chunked by rows, like real files)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = 1
        if oracle_r2 is not None:
            f.attrs["oracle_r2"] = oracle_r2
        f.create_dataset("images", data=np.asarray(images, np.float32),
                         chunks=(min(16, len(images)), *np.shape(images)[1:]))
        f.create_dataset("target", data=np.asarray(target, np.float32)).attrs["units"] = "km"
        if scalars is not None:
            ds = f.create_dataset("scalars", data=np.asarray(scalars, np.float32))
            ds.attrs["names"] = [f"scalar_{i}" for i in range(ds.shape[1])]
        if flight is not None:
            f.create_dataset("flight", data=np.asarray(flight, np.int32))
        if time is not None:
            f.create_dataset("time", data=np.asarray(time, np.float64))
    return Path(path)


def fake_history(final: dict, epochs: int, base_loss: float, var_loss: float) -> list[dict]:
    """One row per epoch with steady losses, metrics improving linearly to ``final``."""
    return [{"epoch": e, "lr": 1e-3, "train_loss": base_loss + var_loss, "train_base_loss": base_loss,
             "train_var_loss": var_loss, "val_loss": base_loss + var_loss, "val_base_loss": base_loss,
             "val_var_loss": var_loss,
             **{k: math.nan if final[k] is None else (e + 1) / epochs * final[k] for k in final}}
            for e in range(epochs)]


def write_run(sweep_dir: Path, variance_lambda: float, seed: int = 0, *, target: np.ndarray,
              pred: np.ndarray | None, train_index: np.ndarray, val_index: np.ndarray,
              data_path: str | Path = "/nonexistent/data.h5", status: str = "completed",
              diverged_epoch: int | None = None, epochs: int = 15, base_loss: float = 0.1,
              var_loss: float = 0.01, oracle_r2=None, flight: np.ndarray | None = None,
              model: str = "transformer", fold: int | None = None, overrides: dict | None = None,
              **summary_overrides) -> Path:
    """A job directory with summary.json (built by the run directory's own ``build_summary``),
    history.csv, predictions.npz, data.json, split.npz and .hydra/{config,overrides}.yaml.
    ``summary_overrides`` replace summary keys (e.g. ``stability="unstable"``); ``flight`` (per
    validation sample) goes into predictions.npz; ``fold`` makes it a leave-one-flight-out fold
    (data.split.kind=cv); ``overrides`` are the command-line settings (default: λ only)."""
    settings = dict(overrides if overrides is not None else {"loss.variance_lambda": f"{variance_lambda:g}"})
    if fold is not None:
        settings.update({"data.split.kind": "cv", "data.split.fold": str(fold)})
    run = Path(sweep_dir) / ",".join([*(f"{k}={v}" for k, v in sorted(settings.items())), f"seed={seed}"])
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    final = (regression_scores(pred, target) if pred is not None
             else dict.fromkeys(("val_r2", "val_variance_ratio", "val_mae", "val_rmse")))
    history = fake_history(final, diverged_epoch or epochs, base_loss, var_loss)
    meta = RunMeta(variance_lambda, seed, model, epochs)
    summary = rundir.build_summary(status, meta, Verdicts(), history, diverged_epoch=diverged_epoch, wall_time_s=1.0)
    rundir.write_summary(run, {**summary, **summary_overrides})
    rundir.write_history(run, history, columns=list(history[0]) if history else rundir.HISTORY_COLUMNS)
    if pred is not None:
        rundir.write_predictions(run, np.asarray(pred, float), np.asarray(target, float), val_index, flight)
    info = {"path": str(data_path), "keys": {"images": "images", "scalars": "scalars", "target": "target",
                                             "flight": "flight", "time": "time"},
            "split": "cv" if fold is not None else "flight", "n_train": len(train_index), "n_val": len(val_index),
            "oracle_r2": oracle_r2}  # fmt: skip
    rundir.write_data_files(run, info, {}, np.asarray(train_index, np.int64), np.asarray(val_index, np.int64))
    split = f"data:\n  split:\n    kind: cv\n    fold: {fold}\n" if fold is not None else ""
    write_text(run / ".hydra" / "config.yaml",
               f"seed: {seed}\nloss:\n  variance_lambda: {float(variance_lambda)!r}\n  denominator: dataset\n{split}")
    write_text(run / ".hydra" / "overrides.yaml", "".join(f"- {k}={v}\n" for k, v in [*settings.items(), ("seed", seed)]))
    return run
