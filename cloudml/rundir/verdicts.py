"""The rules behind summary.json's verdicts, with thresholds that training and analysis share.

Both sides read the thresholds from one config group (`conf/verdicts/`), so a summary written
by a run and the findings of analyze.py apply the same numbers.

Stability, decided from the run's own history:
- ``diverged``: a loss became non-finite (the run stopped there);
- ``unstable``: in the last `stability_window` epochs the validation loss exceeded
  `spike_factor` times the best validation loss reached before that epoch;
- ``stable``: otherwise.
A run is ``collapsed`` when its final variance ratio is below `collapse_variance_ratio`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Verdicts:
    """Thresholds of the verdicts (conf/verdicts/default.yaml)."""

    collapse_variance_ratio: float = 0.2
    stability_window: int = 5
    spike_factor: float = 1.5

    @classmethod
    def from_config(cls, node) -> "Verdicts":
        """From the `verdicts` config node (a mapping; missing keys keep their defaults)."""
        return cls(**{k: v for k, v in dict(node or {}).items() if k in cls.__dataclass_fields__})


def finite(x) -> bool:
    """A real number that is not NaN or infinite (bools are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def stability(history: list, diverged_epoch: Optional[int], verdicts: Verdicts) -> tuple:
    """(`stable`|`unstable`|`diverged`, reason) from the per-epoch rows of history.csv."""
    for row in history:
        if not all(finite(row.get(k)) for k in ("train_loss", "val_loss")):
            return "diverged", f"non-finite loss at epoch {row['epoch']}"
    if diverged_epoch is not None:
        return "diverged", f"non-finite loss at epoch {diverged_epoch}"
    window, factor = verdicts.stability_window, verdicts.spike_factor
    losses = [row["val_loss"] for row in history]
    for i in range(max(1, len(losses) - window), len(losses)):
        best = min(losses[:i])
        if losses[i] > factor * best:
            return "unstable", f"val_loss {losses[i]:.3g} at epoch {history[i]['epoch']} > {factor:g} x best earlier {best:.3g}"
    return "stable", f"no val_loss above {factor:g} x the best earlier value in the last {window} epochs"


def is_collapsed(variance_ratio, verdicts: Verdicts) -> bool:
    """Whether a final variance ratio counts as collapse (no ratio, e.g. diverged: not collapsed)."""
    return finite(variance_ratio) and variance_ratio < verdicts.collapse_variance_ratio
