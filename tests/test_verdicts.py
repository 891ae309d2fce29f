"""What Table 2 may claim: the collapse diagnosis against numpy, verdicts on predictions built to be
calibrated / under-dispersed / over-dispersed, stability judged from training spikes (not from a
λ-weighted validation loss), validation drift, and the paired comparison against a hand computation."""

import math

import numpy as np
import pandas as pd
import pytest

from cloudml.analysis import comparisons
from cloudml.analysis.diagnosis import diagnose
from cloudml.analysis.evidence import RunEvidence
from cloudml.analysis.flightstats import FlightSums, statistics
from cloudml.errors import CloudMLError
from cloudml.rundir import Verdicts
from cloudml.rundir.verdicts import stability, val_drift

RNG = np.random.default_rng(11)


def flights_data(n_flights=30, per_flight=40):
    """Targets with a flight-level offset and a within-flight part; a signal s that predicts y."""
    flight = np.repeat(np.arange(n_flights), per_flight)
    signal = RNG.normal(0, 0.3, n_flights)[flight] + RNG.normal(0, 0.2, flight.size)
    y = 1.0 + signal + RNG.normal(0, 0.25, flight.size)  # E[y | s] = 1 + s
    return flight, signal, y


def test_decomposition_equals_r2_and_each_part_matches_numpy():
    p, y = RNG.gamma(2, 0.3, 500), RNG.gamma(2, 0.4, 500) + 0.3 * RNG.standard_normal(500)
    st = {k: float(v[0]) for k, v in statistics(FlightSums.of(p, y).sums).items()}
    r2 = 1 - np.mean((p - y) ** 2) / np.var(y)
    v, rho = np.var(p) / np.var(y), np.corrcoef(p, y)[0, 1]
    beta = (p.mean() - y.mean()) / y.std()
    assert st["r2"] == pytest.approx(r2, abs=1e-9)
    assert rho**2 - (rho - math.sqrt(v)) ** 2 - beta**2 == pytest.approx(r2, abs=1e-9)  # the identity itself
    assert st["rho"] == pytest.approx(rho, abs=1e-9) and st["variance_ratio"] == pytest.approx(v, abs=1e-9)
    assert st["bias"] == pytest.approx(beta, abs=1e-9)
    assert st["calibration_slope"] == pytest.approx(np.cov(p, y, bias=True)[0, 1] / np.var(p), abs=1e-9)
    d = diagnose([FlightSums.of(p, y)])
    assert d["signal"] - d["dispersion_error"] - d["bias_squared"] == pytest.approx(r2, abs=1e-9)


def test_within_flight_statistics_remove_each_flights_means():
    flight, signal, y = flights_data()
    p = 1.0 + 0.8 * signal + RNG.normal(0, 0.1, y.size)
    pw = p - pd.Series(p).groupby(flight).transform("mean").to_numpy()
    yw = y - pd.Series(y).groupby(flight).transform("mean").to_numpy()
    d = diagnose([FlightSums.of(p, y, flight)])
    assert d["r2_within_flight"] == pytest.approx(1 - np.sum((pw - yw) ** 2) / np.sum(yw**2), abs=1e-9)
    assert d["rho_within_flight"] == pytest.approx(np.corrcoef(pw, yw)[0, 1], abs=1e-9)


@pytest.mark.parametrize("kind, scale, noise, expected", [
    ("calibrated", 1.0, 0.0, "calibrated"),          # p = E[y | s]: slope 1
    ("shrunk", 0.4, 0.0, "under-dispersed"),         # p shrunk towards the mean: slope 1 / 0.4
    ("noisy", 1.0, 0.5, "over-dispersed"),           # p = E[y | s] + noise unrelated to y: slope < 1
])  # fmt: skip
def test_verdict_tells_the_kinds_of_spread_apart(kind, scale, noise, expected):
    flight, signal, y = flights_data()
    p = 1.0 + scale * signal + noise * RNG.standard_normal(y.size)
    d = diagnose([FlightSums.of(p, y, flight)], [np.var(y)])
    assert d["verdict"] == expected, (kind, d["calibration_slope"], d["calibration_slope_ci"])
    assert d["calibration_slope_ci"][0] < d["calibration_slope"] < d["calibration_slope_ci"][1]
    assert "flight-cluster bootstrap" in d["interval_method"]
    assert d["variance_ratio_train"] == pytest.approx(np.var(p) / np.var(y), rel=1e-9)


def test_calibrated_predictor_keeps_variance_ratio_near_rho_squared():
    flight, signal, y = flights_data()
    d = diagnose([FlightSums.of(1.0 + signal, y, flight)])
    assert d["variance_ratio"] == pytest.approx(d["rho"] ** 2, rel=0.1)  # v ≈ ρ² for a calibrated predictor
    assert d["r2_at_unit_variance"] < d["r2"]  # forcing v = 1 can only cost it skill


def history(epochs=15, lam=10.0, spike_epoch=None, spike=30.0):
    """A smooth run whose validation variance ratio drifts up (val_loss grows with λ); optionally one step-loss spike."""
    rows = []
    for e in range(epochs):
        v = 1.0 + 0.02 * e  # over-dispersed and drifting: the old val_loss rule flagged this for large λ
        base = 0.3 * 0.85**e
        rows.append({"epoch": e, "train_loss": base + 0.01, "val_loss": base + lam * (1 - v) ** 2, "val_r2": 0.6,
                     "base_loss_spike": spike if e == spike_epoch else 1.3 + 0.1 * math.sin(e),
                     "grad_norm_spike": 2.0})  # fmt: skip
    return rows


def test_smooth_over_dispersed_large_lambda_history_is_stable_and_one_spike_is_not():
    verdicts = Verdicts()
    smooth = history()
    assert smooth[-1]["val_loss"] > 1.5 * min(r["val_loss"] for r in smooth[:-1])  # a val_loss rule would say unstable
    label, reason = stability(smooth, None, verdicts)
    assert label == "stable" and "largest step base loss 1.4 x" in reason
    label, reason = stability(history(spike_epoch=7), None, verdicts)
    assert label == "unstable"
    assert reason == "step base loss spike at epoch 7: 30 x its running median over the previous 50 steps (limit 10 x)"
    grad = history()
    grad[3]["grad_norm_spike"] = 12.5
    assert stability(grad, None, verdicts)[1].startswith("gradient norm spike at epoch 3: 12.5 x")
    assert stability(history(spike_epoch=7), None, Verdicts(loss_spike_factor=40))[0] == "stable"  # thresholds are config


def test_gradient_spike_while_leaving_the_initialisation_is_not_instability():
    """The warm-up epochs (0 and 1) are not judged unless spike_from_epoch says so."""
    start = history()
    start[0]["grad_norm_spike"], start[1]["grad_norm_spike"] = 14.2, 14.5  # measured in leave-one-flight-out folds
    label, reason = stability(start, None, Verdicts())
    assert label == "stable" and reason.startswith("no step spike from epoch 2 on: largest step base loss 1.4 x and gradient norm 2 x")
    assert stability(start, None, Verdicts.from_config({"spike_from_epoch": 0}))[1].startswith("gradient norm spike at epoch 0: 14.2 x")
    start[2]["grad_norm_spike"] = 12.0
    assert stability(start, None, Verdicts())[1].startswith("gradient norm spike at epoch 2: 12 x")
    with pytest.raises(CloudMLError, match=r"verdicts.spike_from_epoch=-1: expected an integer >= 0"):
        Verdicts.from_config({"spike_from_epoch": -1})


def test_val_drift_flags_a_late_fall_of_validation_r2_without_touching_stability():
    rows = history()
    assert not val_drift(rows, Verdicts())
    rows[-2]["val_r2"] = 0.45  # 0.15 below its best earlier value, within the last 5 epochs
    assert val_drift(rows, Verdicts()) and stability(rows, None, Verdicts())[0] == "stable"
    assert not val_drift(rows, Verdicts(drift_r2_drop=0.2))


def test_paired_comparison_is_the_t_interval_of_per_seed_differences():
    runs = pd.DataFrame({"path": [f"r{i}" for i in range(6)], "variance_lambda": [0.0] * 3 + [1.0] * 3,
                         "seed": [0, 1, 2] * 2, "status": ["completed"] * 6,
                         "val_r2": [0.50, 0.62, 0.55, 0.58, 0.66, 0.57]})  # fmt: skip
    out = comparisons.compare(runs, "variance_lambda", 1.0, 0.0, {})
    diffs = np.array([0.08, 0.04, 0.02])
    half = 4.302652729911275 * diffs.std(ddof=1) / math.sqrt(3)  # t(0.975, 2) from tables
    assert out["n_pairs"] == 3 and out["delta_r2"] == pytest.approx(diffs.mean(), abs=1e-12)
    assert out["ci"] == pytest.approx([diffs.mean() - half, diffs.mean() + half], abs=1e-9)
    assert out["outcome"] == ("beats" if diffs.mean() - half > 0 else "within noise")
    assert out["method"].startswith("paired difference over seeds")


def test_single_seed_comparison_bootstraps_the_same_flights_for_both_runs():
    flight, signal, y = flights_data()
    good, poor = 1.0 + signal, 1.0 + 0.3 * signal  # the poor run shrinks the signal: lower R² on every flight
    evidence = {"a": RunEvidence(FlightSums.of(good, y, flight), None), "b": RunEvidence(FlightSums.of(poor, y, flight), None)}
    runs = pd.DataFrame({"path": ["a", "b"], "variance_lambda": [1.0, 0.0], "seed": [0, 0], "status": ["completed"] * 2,
                         "val_r2": [1 - np.mean((good - y) ** 2) / np.var(y), 1 - np.mean((poor - y) ** 2) / np.var(y)]})  # fmt: skip
    out = comparisons.compare(runs, "variance_lambda", 1.0, 0.0, evidence)
    assert out["n_pairs"] == 1 and out["outcome"] == "beats" and 0 < out["ci"][0] < out["delta_r2"] < out["ci"][1]
    assert out["method"].startswith("one seed: flight-cluster bootstrap")
