"""The rules behind a run's verdicts, with thresholds that training and analysis share.

Both sides read the thresholds from one config group (`conf/verdicts/`), so a summary written
by a run and the findings of analyze.py apply the same numbers.

Stability is judged from the training itself, never from the validation loss (val_loss =
base + λ·(1 − v)² grows with λ for the same curves, so a rule on it would call large λ unstable
by construction):
- ``diverged``: a loss became non-finite (the run stopped there);
- ``unstable``: the training blew up at some step. Per epoch the run logs the largest ratio of
  a step's base (Huber) loss, and of its total gradient norm before clipping, to their running
  median over the previous `spike_window_steps` steps (`base_loss_spike`, `grad_norm_spike`);
  a ratio above `loss_spike_factor` / `grad_spike_factor` is a spike. The base loss is used,
  not the total: the batch estimate of the variance term, (1 − v̂)², is heavy-tailed (χ²-like)
  for every λ, so λ times it would spike by construction. Epochs before `spike_from_epoch`
  are not judged: there the network leaves its initialisation while the learning rate warms
  up, and its gradient norm falls ten-fold whatever λ is (a steep start, not a blow-up);
- ``stable``: otherwise.
``val_drift`` (λ-free, reported, never used to exclude a λ): validation R² in the last
`drift_window` epochs fell more than `drift_r2_drop` below its best earlier value.
A run is ``collapsed`` when its final variance ratio is below `collapse_variance_ratio`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from cloudml.errors import CloudMLError

SPIKE_COLUMNS = {"base_loss_spike": ("loss_spike_factor", "step base loss"),
                 "grad_norm_spike": ("grad_spike_factor", "gradient norm")}  # fmt: skip


@dataclass(frozen=True)
class Verdicts:
    """Thresholds of the verdicts (conf/verdicts/default.yaml)."""

    collapse_variance_ratio: float = 0.2
    spike_window_steps: int = 50
    loss_spike_factor: float = 10.0
    grad_spike_factor: float = 10.0
    drift_window: int = 5
    drift_r2_drop: float = 0.1
    spike_from_epoch: int = 2

    # Settings that may be 0 (the others must be > 0).
    MAY_BE_ZERO = ("spike_from_epoch",)

    @classmethod
    def from_config(cls, node) -> "Verdicts":
        """From the `verdicts` config node (missing keys keep their defaults); a bad value is a CloudMLError."""
        values = dict(node or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise CloudMLError(f"verdicts.{unknown[0]}: no such setting (expected one of {', '.join(cls.__dataclass_fields__)})")
        for key, value in values.items():
            integer = cls.__dataclass_fields__[key].type == "int"
            least = 0 if key in cls.MAY_BE_ZERO else 1
            valid = finite(value) and (value == int(value) and value >= least if integer else value > 0)
            if not valid:
                raise CloudMLError(f"verdicts.{key}={value!r}: expected {f'an integer >= {least}' if integer else 'a number > 0'}")
        return cls(**values)


def finite(x) -> bool:
    """A real number that is not NaN or infinite (bools are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def judges_spikes(history: list) -> bool:
    """Whether the history holds the per-epoch spike ratios the stability rule reads."""
    return bool(history) and all(k in history[0] for k in SPIKE_COLUMNS)


def stability(history: list, diverged_epoch: Optional[int], verdicts: Verdicts) -> tuple:
    """(`stable`|`unstable`|`diverged`, reason) from the per-epoch rows of history.csv."""
    for row in history:
        if not all(finite(row.get(k)) for k in ("train_loss", "val_loss")):
            return "diverged", f"non-finite loss at epoch {row['epoch']}"
    if diverged_epoch is not None:
        return "diverged", f"non-finite loss at epoch {diverged_epoch}"
    judged = [row for row in history if row["epoch"] >= verdicts.spike_from_epoch]
    for row in judged:
        for column, (factor_name, what) in SPIKE_COLUMNS.items():
            ratio, factor = row.get(column), getattr(verdicts, factor_name)
            if finite(ratio) and ratio > factor:
                return "unstable", (f"{what} spike at epoch {row['epoch']}: {ratio:.3g} x its running median over "
                                    f"the previous {verdicts.spike_window_steps} steps (limit {factor:g} x)")  # fmt: skip
    largest = {c: max((r[c] for r in judged if finite(r.get(c))), default=None) for c in SPIKE_COLUMNS}
    if None in largest.values():
        return "stable", "no spike measured (no per-step spike ratios in history.csv)"
    since = f" from epoch {verdicts.spike_from_epoch} on" if verdicts.spike_from_epoch else ""
    return "stable", (f"no step spike{since}: largest step base loss {largest['base_loss_spike']:.3g} x and gradient norm "
                      f"{largest['grad_norm_spike']:.3g} x their running medians (limits {verdicts.loss_spike_factor:g} x, "
                      f"{verdicts.grad_spike_factor:g} x)")  # fmt: skip


def val_drift(history: list, verdicts: Verdicts) -> bool:
    """Validation R² in the last `drift_window` epochs fell more than `drift_r2_drop` below its best earlier value."""
    r2 = [row.get("val_r2") for row in history]
    for i in range(max(1, len(r2) - verdicts.drift_window), len(r2)):
        earlier = [x for x in r2[:i] if finite(x)]
        if earlier and finite(r2[i]) and r2[i] < max(earlier) - verdicts.drift_r2_drop:
            return True
    return False


def is_collapsed(variance_ratio, verdicts: Verdicts) -> bool:
    """Whether a final variance ratio counts as collapse (no ratio, e.g. diverged: not collapsed)."""
    return finite(variance_ratio) and variance_ratio < verdicts.collapse_variance_ratio
