"""summary.json from a run's history: final metrics, last-5 averages, stability, collapse.

Torch-free, so the analysis side can use the same rules.

Stability rule (decided from the run's own history, thresholds configurable):
- ``diverged``: a loss became non-finite (the run stopped there);
- ``unstable``: in the last `window` epochs the validation loss exceeded `spike_factor`
  times the best validation loss reached before that epoch (a spike it did not recover from
  in time to be ignored);
- ``stable``: otherwise.
"""

from __future__ import annotations

import math
from typing import Optional

HISTORY_COLUMNS = [
    "epoch", "lr", "train_loss", "train_base_loss", "train_var_loss",
    "val_loss", "val_base_loss", "val_var_loss",
    "val_r2", "val_variance_ratio", "val_mae", "val_rmse",
]  # fmt: skip
COLLAPSE_RATIO = 0.2


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def stability(history: list, diverged_epoch: Optional[int] = None, window: int = 5, spike_factor: float = 1.5):
    """(`stable`|`unstable`|`diverged`, reason) from the per-epoch rows of history.csv."""
    for row in history:
        if not all(_finite(row.get(k)) for k in ("train_loss", "val_loss")):
            return "diverged", f"non-finite loss at epoch {row['epoch']}"
    if diverged_epoch is not None:
        return "diverged", f"non-finite loss at epoch {diverged_epoch}"
    losses = [row["val_loss"] for row in history]
    for i in range(max(1, len(losses) - window), len(losses)):
        best = min(losses[:i])
        if losses[i] > spike_factor * best:
            return "unstable", (
                f"val_loss {losses[i]:.3g} at epoch {history[i]['epoch']} > {spike_factor:g} x best earlier {best:.3g}"
            )
    return "stable", f"no val_loss above {spike_factor:g} x the best earlier value in the last {window} epochs"


def _mean_last(history: list, key: str, n: int = 5) -> Optional[float]:
    values = [row[key] for row in history[-n:] if _finite(row.get(key))]
    return sum(values) / len(values) if values else None


def summarize(
    history: list,
    *,
    status: str,
    variance_lambda: float,
    seed: int,
    model: str,
    epochs_planned: int,
    diverged_epoch: Optional[int] = None,
    wall_time_s: float = 0.0,
    window: int = 5,
    spike_factor: float = 1.5,
    **extra,
) -> dict:
    """The SPEC §3 summary of a run (more keys may be passed through `extra`)."""
    finished = [r for r in history if _finite(r.get("train_loss"))]
    last = history[-1] if history else {}
    final = {k: (last.get(f"val_{k}") if _finite(last.get(f"val_{k}")) else None)
             for k in ("r2", "variance_ratio", "mae", "rmse")}  # fmt: skip
    label, reason = stability(history, diverged_epoch, window, spike_factor)
    ratio = final["variance_ratio"]
    return {
        "status": status,
        "variance_lambda": float(variance_lambda),
        "seed": int(seed),
        "model": model,
        "epochs_completed": len(finished),
        "epochs_planned": int(epochs_planned),
        "final": {f"val_{k}": v for k, v in final.items()},
        "avg_base_loss_last5": _mean_last(finished, "train_base_loss"),
        "avg_var_loss_last5": _mean_last(finished, "train_var_loss"),
        "stability": label,
        "stability_reason": reason,
        "diverged_epoch": diverged_epoch,
        "collapsed": bool(ratio is not None and ratio < COLLAPSE_RATIO),
        "wall_time_s": round(float(wall_time_s), 2),
        **extra,
    }
