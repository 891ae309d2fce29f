"""The variance-preserving loss: Huber(pred, y) + λ · (1 − var(pred) / var(y))².

Both parts are returned separately so that runs can log them. Targets and predictions
are in normalised units (z-scores of the training split), where Huber's δ = 1 means one
training-set standard deviation.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cloudml.errors import CloudMLError

DENOMINATORS = ("dataset", "batch")


class LossParts(NamedTuple):
    total: torch.Tensor
    base: torch.Tensor
    var: torch.Tensor


class VariancePreservingLoss(nn.Module):
    """Huber base loss plus λ times the squared shortfall of the predictions' variance.

    denominator:
      - ``dataset`` (default): var(y) is the training-split target variance, a constant
        (1.0 in normalised units). The batch's var(pred) estimates the global one without bias.
      - ``batch``: var(y) of the batch, as the formula is written; biased (TRAPS: the optimum
        sits at a global ratio < 1 for small batches) and guarded by `batch_var_floor`,
        a fraction of the training-set variance below which a batch's var(y) is clamped
        (time-adjacent samples can make it ~0 and the term explode).
    """

    def __init__(
        self,
        variance_lambda: float = 0.0,
        denominator: str = "dataset",
        huber_delta: float = 1.0,
        batch_var_floor: float = 0.1,
        target_variance: float = 1.0,
    ):
        super().__init__()
        if isinstance(variance_lambda, bool) or not isinstance(variance_lambda, (int, float)):
            raise CloudMLError(f"loss.variance_lambda={variance_lambda!r}: expected a number >= 0")
        if not variance_lambda >= 0 or variance_lambda == float("inf"):
            raise CloudMLError(f"loss.variance_lambda={variance_lambda}: expected a finite number >= 0")
        if denominator not in DENOMINATORS:
            raise CloudMLError(f"loss.denominator={denominator!r}: expected one of {', '.join(DENOMINATORS)}")
        if not huber_delta > 0:
            raise CloudMLError(f"loss.huber_delta={huber_delta}: expected a number > 0")
        self.variance_lambda = float(variance_lambda)
        self.denominator = denominator
        self.huber_delta = float(huber_delta)
        self.batch_var_floor = float(batch_var_floor)
        self.target_variance = float(target_variance)

    def variance_term(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(1 − var(pred)/var(y))² with unbiased variances over the batch."""
        var_pred = pred.var(correction=1) if pred.numel() > 1 else pred.new_zeros(())
        if self.denominator == "dataset":
            var_y = pred.new_tensor(self.target_variance)
        else:
            var_y = target.var(correction=1) if target.numel() > 1 else target.new_zeros(())
            var_y = var_y.clamp_min(self.batch_var_floor * self.target_variance)
        return (1.0 - var_pred / var_y) ** 2

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> LossParts:
        base = F.huber_loss(pred, target, delta=self.huber_delta)
        var = self.variance_term(pred, target)
        return LossParts(base + self.variance_lambda * var, base, var)
