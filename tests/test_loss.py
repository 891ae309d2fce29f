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


def test_plugin_penalty_is_biased_and_the_halves_penalty_is_not_at_unit_variance():
    """At a true variance ratio of 1, E[(1 − v̂)²] = Var(v̂) ≈ 2/(n − 1) > 0, while the product of the
    two half-batch shortfalls has expectation (1 − v)² = 0 (20 000 random batches of 64)."""
    torch.manual_seed(0)
    batches = torch.randn(20_000, 64, dtype=torch.float64)  # predictions with variance 1 = the training variance
    plugin = VariancePreservingLoss(1.0, estimator="plugin")
    halves = VariancePreservingLoss(1.0, estimator="halves")
    p_vals = torch.stack([plugin.variance_term(b, b) for b in batches])
    h_vals = torch.stack([halves.variance_term(b, b) for b in batches])
    assert p_vals.mean().item() == pytest.approx(2 / 63, rel=0.05)  # the bias the plug-in penalty carries
    se = h_vals.std().item() / np.sqrt(len(h_vals))
    assert abs(h_vals.mean().item()) < 4 * se  # unbiased: within noise of 0
    assert (h_vals < 0).any()  # one batch's value can be negative; only its mean is (1 − v)²


def test_halves_penalty_is_the_product_of_the_half_batch_shortfalls():
    p = torch.tensor([0.1, -0.4, 0.9, 0.3, -1.2, 0.5], dtype=torch.float64)
    a, b = p[:3].var(correction=1) / 1.3, p[3:].var(correction=1) / 1.3
    loss = VariancePreservingLoss(2.0, estimator="halves", target_variance=1.3)
    total, base, var = loss(p, torch.zeros(6, dtype=torch.float64))
    assert var.item() == pytest.approx(((1 - a) * (1 - b)).item(), rel=1e-12)
    assert total.item() == pytest.approx(base.item() + 2.0 * var.item(), rel=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"estimator": "median"}, "loss.estimator='median': expected one of plugin, halves"),
    ({"estimator": "halves", "denominator": "batch"}, "loss.estimator=halves: expected loss.denominator=dataset, got 'batch'"),
])  # fmt: skip
def test_bad_estimator_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(CloudMLError, match=message.replace("(", r"\(").replace(")", r"\)")):
        VariancePreservingLoss(1.0, **kwargs)
