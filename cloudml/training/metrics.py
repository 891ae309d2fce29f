"""Whole-validation-set metrics as torchmetrics Metrics: exact for any batching and under DDP."""

from __future__ import annotations

import torch
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, R2Score


class VarianceRatio(Metric):
    """var(pred) / var(target) over everything seen: a variance ratio, never a std ratio.

    Keeps running sums (count, Σp, Σp², Σy, Σy²) in float64, reduced by summation across
    processes, so the value equals numpy's `pred.var() / target.var()` on the whole set.
    """

    full_state_update = False
    higher_is_better = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("n", "sum_p", "sum_p2", "sum_y", "sum_y2"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        p, y = pred.detach().double().flatten(), target.detach().double().flatten()
        self.n += p.numel()
        self.sum_p += p.sum()
        self.sum_p2 += (p * p).sum()
        self.sum_y += y.sum()
        self.sum_y2 += (y * y).sum()

    def compute(self) -> torch.Tensor:
        var_p = self.sum_p2 / self.n - (self.sum_p / self.n) ** 2
        var_y = self.sum_y2 / self.n - (self.sum_y / self.n) ** 2
        return var_p / var_y


def validation_metrics(prefix: str = "") -> MetricCollection:
    """R², variance ratio, MAE and RMSE (in km when fed km), named `prefix` + r2, variance_ratio, ..."""
    return MetricCollection(
        {
            "r2": R2Score(),
            "variance_ratio": VarianceRatio(),
            "mae": MeanAbsoluteError(),
            "rmse": MeanSquaredError(squared=False),
        },
        prefix=prefix,
    )
