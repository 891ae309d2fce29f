"""Honest baselines for a run's split: the training-split mean, and ridge regression on
simple per-sample frame statistics + scalars (SPEC §4 "Honest context").

Both are fitted on the training indices of the run's ``split.npz`` and scored on exactly
its validation indices, so a baseline can never be scored on an easier split than the
networks. Feature standardisation uses training rows only. numpy + h5py, no torch.

CLI: ``python -m cloudml.baselines RUN_DIR`` prints the baselines for that run's split.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloudml.analysis.scores import regression_scores
from cloudml.errors import CloudMLError
from cloudml.atomic import write_json

KEY_ROLES = ("images", "scalars", "target", "flight", "time")
ALPHAS = np.logspace(-3, 4, 29)
FEATURE_VERSION = 1  # bump when the features or the fit change: cached results then recompute


@dataclass(frozen=True)
class SplitSpec:
    """Where a run's data lives and which rows it trained and validated on."""

    data_path: Path
    keys: dict  # data.json "keys": dataset name per role (images, scalars, target, ...)
    split: str | None
    train_index: np.ndarray
    val_index: np.ndarray
    oracle_r2: float | None

    @property
    def split_hash(self) -> str:
        """Identifies the (train, val) index sets, order included."""
        h = hashlib.sha1()
        for idx in (self.train_index, self.val_index):
            h.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes() + b"|")
        return h.hexdigest()[:16]

    def cache_key(self) -> str:
        """(file path, mtime, size, split hash, keys, feature version) → one string."""
        st = self.data_path.stat()
        parts = [str(self.data_path.resolve()), st.st_mtime_ns, st.st_size, self.split_hash,
                 sorted(self.keys.items()), FEATURE_VERSION]
        return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()


def read_split_spec(run_dir: str | Path) -> SplitSpec:
    """Read ``data.json`` and ``split.npz`` of a run; raises CloudMLError."""
    run_dir = Path(run_dir)
    try:
        info = json.loads((run_dir / "data.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CloudMLError(f"{run_dir / 'data.json'} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CloudMLError(f"{run_dir / 'data.json'} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(info, dict) or not isinstance(info.get("path"), str):
        raise CloudMLError(f"{run_dir / 'data.json'} has no string 'path'")
    try:
        with np.load(run_dir / "split.npz", allow_pickle=False) as npz:
            train, val = np.asarray(npz["train_index"], np.int64), np.asarray(npz["val_index"], np.int64)
    except FileNotFoundError:
        raise CloudMLError(f"{run_dir / 'split.npz'} not found") from None
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise CloudMLError(f"{run_dir / 'split.npz'} unreadable or lacks train_index/val_index ({exc})") from None
    path = Path(info["path"])
    keys = {k: v for k, v in (info.get("keys") or {}).items() if k in KEY_ROLES}
    oracle = info.get("oracle_r2")
    return SplitSpec(path if path.is_absolute() else run_dir / path, keys, info.get("split"),
                     train, val, float(oracle) if isinstance(oracle, (int, float)) else None)


def feature_names(n_frames: int, scalar_names: list[str]) -> list[str]:
    """Names of the columns :func:`frame_features` + scalars produce, in order."""
    per_frame = [f"{stat}_t{t}" for stat in ("mean", "std", "abs_grad_x", "abs_grad_y")
                 for t in range(n_frames)]
    return per_frame + [f"abs_diff_t{t}_t{t + 1}" for t in range(n_frames - 1)] + list(scalar_names)


def frame_features(images: np.ndarray) -> np.ndarray:
    """(n, T, [C,] H, W) → (n, 5T − 1): per-frame mean, std, mean |∂x|, mean |∂y|, and the
    mean |difference| between consecutive frames (texture and parallax proxies)."""
    x = np.asarray(images, np.float32)
    axes = tuple(range(2, x.ndim))
    stats = [x.mean(axis=axes), x.std(axis=axes),
             np.abs(np.diff(x, axis=-1)).mean(axis=axes), np.abs(np.diff(x, axis=-2)).mean(axis=axes),
             np.abs(np.diff(x, axis=1)).mean(axis=axes)]
    return np.concatenate(stats, axis=1).astype(np.float64)


def read_features(spec: SplitSpec, rows: np.ndarray, memory_budget_mb: float = 64):
    """Features, targets (km) and feature names for sorted unique ``rows``; the file is
    checked by the data layer, and images are read in chunks of rows that fit the budget."""
    from cloudml.data.schema import DataKeys, open_h5, read_images, read_metadata

    meta = read_metadata(spec.data_path, DataKeys(**spec.keys))
    if rows.size and (rows[0] < 0 or rows[-1] >= meta.n):
        raise CloudMLError(f"split indices outside 0..{meta.n - 1} of {spec.data_path}")
    row_bytes = 4 * 4 * int(np.prod(meta.frame_shape))  # float32 block + diff temporaries
    step = max(1, int(memory_budget_mb * 2**20 // row_bytes))
    with open_h5(meta.path) as f:
        images = f[meta.keys.images]
        X = np.concatenate([frame_features(read_images(images, rows[i:i + step]))
                            for i in range(0, rows.size, step)])
        if meta.keys.scalars:
            X = np.hstack([X, np.asarray(f[meta.keys.scalars][()], np.float64)[rows]])
    return X, meta.target[rows], feature_names(meta.frame_shape[0], meta.scalar_names)


@dataclass
class Ridge:
    """A fitted ridge model on standardised features (training-split mean/std)."""

    weights: np.ndarray
    intercept: float
    alpha: float
    mean: np.ndarray
    scale: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale @ self.weights + self.intercept


def fit_ridge(X: np.ndarray, y: np.ndarray, alphas=ALPHAS) -> Ridge:
    """Ridge with intercept; α chosen by generalised cross-validation on the training rows."""
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    Z, yc = (X - mean) / scale, y - y.mean()
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    Uty, n = U.T @ yc, len(y)

    def gcv(alpha: float) -> float:
        shrink = s**2 / (s**2 + alpha)
        resid = yc - U @ (shrink * Uty)
        dof = shrink.sum() + 1  # + intercept
        return n * (resid @ resid) / (n - dof) ** 2 if n > dof else np.inf

    alpha = float(min(alphas, key=gcv))
    weights = Vt.T @ (s / (s**2 + alpha) * Uty)
    return Ridge(weights, float(y.mean()), alpha, mean, scale)


def oracle_scores(spec: SplitSpec, val_index: np.ndarray, y_va: np.ndarray) -> dict | None:
    """Scores of the file's `oracle_pred` (synthetic data: E[h | cloud top]) on the same split."""
    from cloudml.data.schema import open_h5

    with open_h5(spec.data_path) as f:
        if "oracle_pred" not in f:
            return None
        oracle = np.asarray(f["oracle_pred"][()], np.float64)[val_index]
    return {**regression_scores(oracle, y_va), "what": "Bayes predictor E[h | cloud top] of the generator"}


def compute_baselines(spec: SplitSpec, memory_budget_mb: float = 64) -> dict:
    """Mean predictor and ridge, fitted on the train rows and scored on the val rows."""
    if spec.train_index.size < 2 or spec.val_index.size < 2:
        raise CloudMLError("split.npz needs at least 2 training and 2 validation indices")
    rows = np.unique(np.concatenate([spec.train_index, spec.val_index]))
    X, y, names = read_features(spec, rows, memory_budget_mb)
    at = {"train": np.searchsorted(rows, spec.train_index), "val": np.searchsorted(rows, spec.val_index)}
    if not np.all(np.isfinite(X)):
        raise CloudMLError(f"non-finite pixels in the split's rows of {spec.data_path}")
    X_tr, y_tr, X_va, y_va = X[at["train"]], y[at["train"]], X[at["val"]], y[at["val"]]
    ridge = fit_ridge(X_tr, y_tr)
    oracle = oracle_scores(spec, spec.val_index, y_va)
    return {
        "available": True,
        "data_path": str(spec.data_path),
        "split": spec.split,
        "split_hash": spec.split_hash,
        "n_train": int(spec.train_index.size),
        "n_val": int(spec.val_index.size),
        "mean_predictor": {**regression_scores(np.full_like(y_va, y_tr.mean()), y_va),
                           "train_mean_km": float(y_tr.mean())},
        "ridge": {**regression_scores(ridge.predict(X_va), y_va), "alpha": ridge.alpha,
                  "alpha_method": "generalised cross-validation on the training split",
                  "features": names},
        "standardisation": "feature mean/std from the training split only",
        **({"oracle": oracle} if oracle else {}),
    }


def baselines_for(spec: SplitSpec, cache_file: Path | None = None, memory_budget_mb: float = 64) -> dict:
    """:func:`compute_baselines`, cached in ``cache_file`` per (file, mtime, size, split);
    a missing or unreadable data file gives ``{"available": False, "reason": ...}``."""
    try:
        key = spec.cache_key()
    except OSError:
        return {"available": False, "reason": f"data file {spec.data_path} not found"}
    cache = {}
    if cache_file is not None and cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            cache = {}  # a damaged cache is only a cache: recompute
        if isinstance(cache, dict) and key in cache:
            return cache[key]
    try:
        result = compute_baselines(spec, memory_budget_mb)
    except (CloudMLError, OSError) as exc:
        return {"available": False, "reason": str(exc)}
    if cache_file is not None:
        write_json(cache_file, {**(cache if isinstance(cache, dict) else {}), key: result})
    return result


def format_baselines(result: dict) -> str:
    """A few lines of plain text for the CLI."""
    lines = [f"Baselines on split {result['split']!r} of {result['data_path']} "
             f"({result['n_train']} train / {result['n_val']} val samples)",
             f"{'model':<24}{'val_r2':>9}{'var_ratio_%':>13}{'val_mae':>9}{'val_rmse':>10}"]
    for name, label in (("mean_predictor", "mean predictor"),
                        ("ridge", f"ridge (alpha={result['ridge']['alpha']:.3g})")):
        m = result[name]
        lines.append(f"{label:<24}{m['val_r2']:>9.3f}{100 * m['val_variance_ratio']:>13.1f}"
                     f"{m['val_mae']:>9.3f}{m['val_rmse']:>10.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudml.baselines", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run directory holding data.json and split.npz")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = baselines_for(read_split_spec(args.run_dir))
    except CloudMLError as exc:
        print(f"cloudml.baselines: error: {exc}", file=sys.stderr)
        return 2
    if not result.get("available"):
        print(f"cloudml.baselines: error: {result['reason']}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_baselines(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
