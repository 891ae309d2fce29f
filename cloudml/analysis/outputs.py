"""Pieces every analysis writes with: strict JSON, the results directory, stacked training
curves, the baseline notes, figure panels and the selected loss config (all files atomically)."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from cloudml.analysis import selection
from cloudml.analysis.findings import bayes_text
from cloudml.analysis.runs import read_history
from cloudml.atomic import write_text
from cloudml.errors import CloudMLError


def to_jsonable(obj):
    """numpy/pandas scalars → Python, non-finite floats and missing values → None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return None if pd.isna(obj) else str(obj)


def strict_json(obj) -> str:
    """Standard JSON (no NaN literals), so any JSON reader can load the summary."""
    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def prepare_results_dir(results_dir: str | Path, cwd: Path) -> Path:
    """Create ``results_dir`` if missing and prove it is writable."""
    path = Path(results_dir)
    path = path if path.is_absolute() else cwd / path
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CloudMLError(f"results_dir {path} is not a writable directory ({exc.strerror or exc})") from None
    return path


def load_histories(root: Path, runs: pd.DataFrame, factor: str) -> pd.DataFrame:
    """All runs' history.csv stacked, tagged with their level of `factor`, seed and fold."""
    frames = []
    for run in runs.to_dict("records"):
        h = read_history(root / run["path"])
        if h is not None and {"val_r2", "val_variance_ratio"} <= set(h.columns):
            frames.append(h[["epoch", "val_r2", "val_variance_ratio"]].assign(**{factor: run[factor], "seed": run["seed"], "fold": run.get("fold")}))
    columns = ["epoch", "val_r2", "val_variance_ratio", factor, "seed", "fold"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def baseline_lines(b: dict) -> list[str]:
    """Notes under Table 2: the baselines on the same split, and the Bayes reference."""
    if not b.get("available"):
        return [f"Baselines: unavailable ({b.get('reason')})."]
    m, r = b["mean_predictor"], b["ridge"]
    ci = r.get("val_r2_ci") or [None, None]
    ridge_ci = "" if ci[0] is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    if b.get("n_folds", 1) > 1:  # leave-one-flight-out: each fold's baselines fitted on its training flights
        where = f"Baselines per fold, pooled over {b['n_folds']} held-out flights ({b['n_val']} samples)"
        alphas = r["alpha"] if isinstance(r["alpha"], list) else [r["alpha"]]
        alpha = f"{alphas[0]:.3g}" if len(alphas) == 1 else f"{min(alphas):.3g} to {max(alphas):.3g} by fold"
    else:
        where = f"Baselines on the same split ({b['n_train']} train / {b['n_val']} val samples)"
        alpha = f"{r['alpha']:.3g}"
    return [f"{where}: "
            f"mean predictor R² = {m['val_r2']:.3f} (variance ratio {100 * m['val_variance_ratio']:.1f} %); "
            f"ridge on frame statistics + scalars (alpha = {alpha}) R² = {r['val_r2']:.3f}{ridge_ci} "
            f"(variance ratio {100 * r['val_variance_ratio']:.1f} %). {_sentence(bayes_text(b))}."]  # fmt: skip


def distribution_panels(per_level: pd.DataFrame, preds: dict, factor: str) -> list[dict]:
    """Distribution-figure panels: pooled predictions per level, or the level's status when it has none."""
    panels = []
    for s in per_level.to_dict("records"):
        pairs = preds.get(s[factor], [])
        panels.append({"label": f"λ = {s[factor]:g}" if factor == "variance_lambda" else str(s[factor]), "status": s["status"],
                       "pred": np.concatenate([p for p, _ in pairs]) if pairs else None,
                       "target": np.concatenate([t for _, t in pairs]) if pairs else None,
                       "r2": s["val_r2"], "variance_ratio": s["val_variance_ratio"], "n_seeds": s["n_seeds"]})  # fmt: skip
    return panels


def write_selected_config(selected_path: Path, chosen: dict, sweep_root: Path) -> str:
    """conf/loss/selected.yaml for `loss=selected`; returns the line that says what happened."""
    if chosen["variance_lambda"] is None:
        return f"{selected_path} not updated: nothing selected."
    try:
        selected_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(selected_path, selection.selected_loss_yaml(chosen["variance_lambda"], sweep_root, chosen["reason"]))
    except OSError as exc:
        raise CloudMLError(f"selected_loss_config {selected_path} cannot be written ({exc.strerror or exc})") from None
    return f"Wrote {selected_path} (loss=selected)."
