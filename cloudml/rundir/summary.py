"""summary.json of every kind of run: completed, diverged, running, interrupted, failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from cloudml.rundir.names import FINAL_KEYS
from cloudml.rundir.verdicts import Verdicts, finite, is_collapsed, stability, val_drift


@dataclass(frozen=True)
class RunMeta:
    """What identifies a run in its summary (numbers as configured; a failed run's may be bad)."""

    variance_lambda: object
    seed: object
    model: Optional[str]
    epochs_planned: object
    name: Optional[str] = None
    denominator: Optional[str] = None

    @classmethod
    def from_config(cls, cfg, model: Optional[str]) -> "RunMeta":
        """From a composed run config (a mapping); `model` is the name of its model config."""
        loss, trainer = cfg.get("loss") or {}, cfg.get("trainer") or {}
        return cls(variance_lambda=loss.get("variance_lambda"), seed=cfg.get("seed"), model=model,
                   epochs_planned=trainer.get("max_epochs"), name=cfg.get("name"),
                   denominator=loss.get("denominator"))  # fmt: skip


def _mean_last(history: list, key: str, n: int = 5) -> Optional[float]:
    values = [row[key] for row in history[-n:] if finite(row.get(key))]
    return sum(values) / len(values) if values else None


def _number(x, kind):
    """`x` as int/float when it is one (a summary must hold what the run used), else as given."""
    return kind(x) if finite(x) else x


def _median(values: list) -> Optional[float]:
    values = sorted(v for v in values if finite(v))
    return None if not values else (values[len(values) // 2] + values[(len(values) - 1) // 2]) / 2


def build_summary(status: str, meta: RunMeta, verdicts: Verdicts, history: list = (), *,
                  diverged_epoch: Optional[int] = None, wall_time_s: float = 0.0,
                  parameters: Optional[int] = None, error: Optional[str] = None) -> dict:  # fmt: skip
    """The summary of a run from its history so far; `failed` with `error` when it never trained."""
    history = list(history)
    finished = [r for r in history if finite(r.get("train_loss"))]
    last = history[-1] if history else {}
    final = {k: last.get(k) if finite(last.get(k)) else None for k in FINAL_KEYS}
    if status == "failed" and not history:
        label, reason = None, "the run failed before training"
        collapsed = drift = None
    else:
        label, reason = stability(history, diverged_epoch, verdicts)
        collapsed, drift = is_collapsed(final["val_variance_ratio"], verdicts), val_drift(history, verdicts)
    summary = {
        "status": status,
        "variance_lambda": _number(meta.variance_lambda, float),
        "seed": _number(meta.seed, int),
        "model": meta.model,
        "epochs_completed": len(finished),
        "epochs_planned": _number(meta.epochs_planned, int),
        "final": final,
        "avg_base_loss_last5": _mean_last(finished, "train_base_loss"),
        "avg_var_loss_last5": _mean_last(finished, "train_var_loss"),
        "stability": label,
        "stability_reason": reason,
        "val_drift": drift,
        "diverged_epoch": diverged_epoch,
        "collapsed": collapsed,
        "wall_time_s": round(float(wall_time_s), 2),
        "seconds_per_epoch": _median([r.get("epoch_seconds") for r in finished]),
        "parameters": parameters,
        "name": meta.name,
        "denominator": meta.denominator,
    }
    if error is not None:
        summary["error"] = error
    return summary
