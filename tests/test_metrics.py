import numpy as np
import pytest
import torch

from cloudml.training.metrics import VarianceRatio, validation_metrics


def test_variance_ratio_is_exact_over_uneven_batches():
    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 0.4, 1003) + 0.1
    p = 0.3 * y + rng.normal(0, 0.1, 1003) + 0.5
    metric = VarianceRatio()
    for chunk in np.split(np.arange(1003), [1, 7, 64, 500, 999]):  # sizes 1, 6, 57, 436, 499, 4
        metric.update(torch.tensor(p[chunk]), torch.tensor(y[chunk]))
    assert metric.compute().item() == pytest.approx(p.var() / y.var(), rel=1e-12)


def test_variance_ratio_is_a_variance_not_a_std_ratio():
    y = torch.arange(100, dtype=torch.float64)
    metric = VarianceRatio()
    metric.update(0.5 * y, y)
    assert metric.compute().item() == pytest.approx(0.25)


def test_collection_matches_numpy_r2_mae_rmse():
    rng = np.random.default_rng(1)
    y = rng.uniform(0.1, 2.0, 300)
    p = y + rng.normal(0, 0.3, 300)
    metrics = validation_metrics()
    for chunk in np.array_split(np.arange(300), 7):
        metrics.update(torch.tensor(p[chunk]), torch.tensor(y[chunk]))
    out = {k: v.item() for k, v in metrics.compute().items()}
    assert out["r2"] == pytest.approx(1 - np.mean((p - y) ** 2) / y.var(), rel=1e-6)
    assert out["mae"] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-6)
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)), rel=1e-6)
