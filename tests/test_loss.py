import numpy as np
import pytest
import torch

from cloudml.errors import CloudMLError
from cloudml.training.loss import VariancePreservingLoss


def _huber(p, y, delta=1.0):
    r = np.abs(p - y)
    return np.mean(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)))


@pytest.mark.parametrize("lam", [0.0, 0.5, 2.0, 10.0])
def test_loss_equals_the_formula_by_hand_with_dataset_denominator(lam):
    rng = np.random.default_rng(1)
    p, y = rng.normal(0, 0.5, 64), rng.normal(0, 1.5, 64)  # residuals both below and above delta
    loss = VariancePreservingLoss(lam, denominator="dataset", target_variance=1.3)
    total, base, var = loss(torch.tensor(p), torch.tensor(y))
    expected_var = (1 - p.var(ddof=1) / 1.3) ** 2
    assert base.item() == pytest.approx(_huber(p, y), rel=1e-10)
    assert var.item() == pytest.approx(expected_var, rel=1e-10)
    assert total.item() == pytest.approx(_huber(p, y) + lam * expected_var, rel=1e-10)


def test_batch_denominator_uses_the_batch_variance_of_the_target():
    rng = np.random.default_rng(2)
    p, y = rng.normal(0, 0.5, 32), rng.normal(0, 1.0, 32)
    loss = VariancePreservingLoss(1.0, denominator="batch", batch_var_floor=0.01)
    _, _, var = loss(torch.tensor(p), torch.tensor(y))
    assert var.item() == pytest.approx((1 - p.var(ddof=1) / y.var(ddof=1)) ** 2, rel=1e-10)


def test_batch_denominator_is_guarded_against_near_constant_batches():
    p = torch.linspace(-1, 1, 20, dtype=torch.float64)
    y = torch.full((20,), 0.3, dtype=torch.float64) + 1e-6 * torch.arange(20)
    loss = VariancePreservingLoss(1.0, denominator="batch", batch_var_floor=0.1, target_variance=1.0)
    _, _, var = loss(p, y)
    assert var.item() == pytest.approx((1 - p.var().item() / 0.1) ** 2)  # clamped at 0.1, not ~1e-10
    assert var.item() < 100


def test_variance_term_is_zero_when_variances_match():
    y = torch.randn(256, dtype=torch.float64)
    _, _, var = VariancePreservingLoss(1.0, "batch")(y * -1, y)
    assert var.item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "abc", True])
def test_bad_variance_lambda_is_a_one_line_error(bad):
    with pytest.raises(CloudMLError, match="loss.variance_lambda"):
        VariancePreservingLoss(bad)


def test_unknown_denominator_is_refused():
    with pytest.raises(CloudMLError, match="loss.denominator='global'"):
        VariancePreservingLoss(1.0, denominator="global")
