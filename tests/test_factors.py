"""Any factor, Section 3 and leave-one-flight-out, on run directories with known numbers: the varying
setting is found, two at once are refused in one line, the model ablation's table follows the
program's order with paired steps, and folds are pooled (each sample once), never averaged."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from cloudml.analysis.outputs import baseline_lines
from cloudml.analysis.report import analyze_sweep
from cloudml.errors import CloudMLError
from fakes import fake_predictions, write_h5, write_run

N_FLIGHTS, PER_FLIGHT = 4, 20
FLIGHT = np.repeat(np.arange(N_FLIGHTS), PER_FLIGHT)
CFG = {"lambdas": [0, 0.5, 1, 2, 5, 10], "criteria": {"min_r2": 0.2, "min_variance_ratio": 0.6},
       "decision_matrix": {"min_r2": 0.3, "variance_ratio_range": [0.8, 1.2]}, "baselines": {"memory_budget_mb": 64}}  # fmt: skip


@pytest.fixture
def data(tmp_path):
    """A file of 4 flights whose target is a frame statistic (so ridge is near perfect)."""
    rng = np.random.default_rng(0)
    images = rng.random((FLIGHT.size, 3, 8, 8), dtype=np.float32) + 0.5 * FLIGHT[:, None, None, None, None][:, 0]
    target = 0.3 + images[:, 0].mean(axis=(1, 2))
    return write_h5(tmp_path / "data.h5", images, target, scalars=np.zeros((FLIGHT.size, 2)), flight=FLIGHT), target


def lofo(sweep, data, lam=0.0, seed=0, folds=range(N_FLIGHTS), quality=(0.9, 0.5, 0.7, 0.8)):
    """One fold per flight: trained on the other flights, predicting its own with correlation `quality[k]`."""
    path, target = data
    preds = {}
    for k in folds:
        val, train = np.flatnonzero(FLIGHT == k), np.flatnonzero(FLIGHT != k)
        pred = fake_predictions(target[val], quality[k], 0.8, np.random.default_rng(k + 10 * seed)) + 0.05 * (k - 1.5)
        preds[k] = (val, pred)
        write_run(sweep, lam, seed, target=target[val], pred=pred, train_index=train, val_index=val, data_path=path,
                  flight=FLIGHT[val], fold=k)  # fmt: skip
    return preds


def analyze(sweep, tmp_path, **cfg):
    return analyze_sweep(sweep, tmp_path / "results", {**CFG, **cfg}, tmp_path / "selected.yaml")


def test_folds_are_pooled_over_every_sample_not_averaged(tmp_path, data):
    preds = lofo(tmp_path / "sweep", data)
    p = np.concatenate([preds[k][1] for k in range(N_FLIGHTS)])
    y = np.concatenate([data[1][preds[k][0]] for k in range(N_FLIGHTS)])
    pooled = 1 - np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2)
    folds = [1 - np.mean((preds[k][1] - data[1][preds[k][0]]) ** 2) / np.var(data[1][preds[k][0]]) for k in range(N_FLIGHTS)]
    assert abs(pooled - np.mean(folds)) > 0.05  # averaging folds would be a different number
    summary, text = analyze(tmp_path / "sweep", tmp_path)
    lam0 = next(r for r in summary["by_lambda"] if r["variance_lambda"] == 0.0)
    assert lam0["val_r2"] == pytest.approx(pooled, abs=1e-9) and lam0["n_seeds"] == 1
    assert f"Baselines per fold, pooled over {N_FLIGHTS} held-out flights ({FLIGHT.size} samples)" in text
    assert lam0["flights_covered"] == f"{N_FLIGHTS} of {N_FLIGHTS} flights"
    assert summary["pooled"][0]["folds_completed"] == summary["pooled"][0]["folds_total"] == N_FLIGHTS
    assert lam0["diagnosis"]["n_units"] == N_FLIGHTS  # the diagnosis and its bootstrap span all flights
    per_flight = pd.read_csv(tmp_path / "results" / "section2_per_flight.csv")
    assert list(per_flight["r2"].astype(float)) == pytest.approx(folds, abs=1e-9)
    assert summary["baselines"]["n_folds"] == N_FLIGHTS and summary["baselines"]["n_val"] == FLIGHT.size
    assert summary["baselines"]["ridge"]["val_r2"] > 0.9  # each fold's ridge fitted on its own training flights


def test_a_missing_fold_reads_pending_and_the_pooled_numbers_say_what_they_cover(tmp_path, data):
    lofo(tmp_path / "sweep", data, folds=range(N_FLIGHTS - 1))
    summary, text = analyze(tmp_path / "sweep", tmp_path)
    lam0 = next(r for r in summary["by_lambda"] if r["variance_lambda"] == 0.0)
    assert lam0["flights_covered"] == f"{N_FLIGHTS - 1} of {N_FLIGHTS} flights"
    assert f"({N_FLIGHTS - 1} of {N_FLIGHTS} flights)" in text
    per_flight = pd.read_csv(tmp_path / "results" / "section2_per_flight.csv", dtype=str)
    assert per_flight.set_index("flight").loc[f"flight_{N_FLIGHTS - 1}", "r2"] == "[pending]"


def model_runs(sweep, data, models, seeds=(0, 1, 2), lam=0.0):
    path, target = data
    train, val = np.flatnonzero(FLIGHT < 3), np.flatnonzero(FLIGHT == 3)
    quality = {"cnn": 0.5, "cnn_spatial": 0.6, "cnn_spatial_temporal": 0.62, "transformer": 0.8}
    r2 = {}
    for m in models:
        for seed in seeds:
            corr = quality[m] + 0.03 * seed
            pred = fake_predictions(target[val], corr, corr**2, np.random.default_rng(seed))
            r2[m, seed] = 2 * corr * corr - corr**2
            write_run(sweep, lam, seed, target=target[val], pred=pred, train_index=train, val_index=val, data_path=path,
                      flight=FLIGHT[val], model=m, overrides={"model": m, "loss": "selected"}, parameters=1000 * len(m))  # fmt: skip
    return r2


def test_model_sweep_gives_table3_in_the_programs_order_with_paired_steps(tmp_path, data):
    r2 = model_runs(tmp_path / "sweep", data, ["transformer", "cnn", "cnn_spatial"])
    summary, text = analyze(tmp_path / "sweep", tmp_path)
    assert summary["factor"] == "model" and "Table 3. Architecture ablation" in text
    table = pd.read_csv(tmp_path / "results" / "section3_table3.csv", dtype=str)
    assert list(table["model"]) == ["cnn", "cnn_spatial", "cnn_spatial_temporal", "cnn_spatial_multiscale", "transformer"]
    rows = table.set_index("model")
    assert rows.loc["cnn_spatial_temporal", "final_r2"] == "[pending]"
    assert int(rows.loc["cnn_spatial", "parameters"]) == 1000 * len("cnn_spatial")
    diffs = np.array([r2["transformer", s] - r2["cnn_spatial", s] for s in range(3)])  # the previous completed step
    assert float(rows.loc["transformer", "delta_r2_previous"]) == pytest.approx(diffs.mean(), abs=1e-9)
    half = 4.302652729911275 * diffs.std(ddof=1) / math.sqrt(3)
    assert float(rows.loc["transformer", "delta_r2_previous_ci_low"]) == pytest.approx(diffs.mean() - half, abs=1e-9)
    assert float(rows.loc["cnn_spatial", "delta_r2_first"]) == pytest.approx(np.mean([r2["cnn_spatial", s] - r2["cnn", s] for s in range(3)]), abs=1e-9)
    for name in ("section3_table3.txt", "section3_table3.md", "section3_summary.json", "section3_ablation.png"):
        assert (tmp_path / "results" / name).stat().st_size > 0, name
    findings = json.loads((tmp_path / "results" / "section3_summary.json").read_text())["findings"]
    assert findings[0].startswith("+ spatial attention cnn → cnn_spatial: ΔR² = ")
    assert findings[1].startswith("from cnn_spatial → transformer: ΔR² = ")  # not one part: two steps are pending


def test_two_varying_settings_are_refused_in_one_line_and_fixed_narrows_them(tmp_path, data):
    model_runs(tmp_path / "sweep", data, ["cnn", "transformer"], seeds=(0, 1), lam=0.0)
    path, target = data
    train, val = np.flatnonzero(FLIGHT < 3), np.flatnonzero(FLIGHT == 3)
    for m in ("cnn", "transformer"):
        write_run(tmp_path / "sweep", 1.0, 0, target=target[val], pred=fake_predictions(target[val], 0.6, 0.5, np.random.default_rng(3)),
                  train_index=train, val_index=val, data_path=path, model=m,
                  overrides={"model": m, "loss": "selected", "loss.variance_lambda": "1"})  # fmt: skip
    with pytest.raises(CloudMLError) as err:
        analyze(tmp_path / "sweep", tmp_path)
    assert str(err.value).startswith("the sweep varies 2 settings (loss.variance_lambda: (default), 1; model: cnn, transformer)")
    with pytest.raises(CloudMLError, match=r"^factor=model: the sweep also varies loss.variance_lambda: \(default\), 1; fix them"):
        analyze(tmp_path / "sweep", tmp_path, factor="model")
    summary, _ = analyze(tmp_path / "sweep", tmp_path, factor="model", fixed={"loss.variance_lambda": "1"})
    assert summary["factor"] == "model" and {r["seed"] for r in summary["rows"]} == {0}


def test_any_other_setting_gets_the_same_table_under_its_own_name(tmp_path, data):
    path, target = data
    train, val = np.flatnonzero(FLIGHT < 3), np.flatnonzero(FLIGHT == 3)
    for lr, corr in (("0.001", 0.5), ("0.002", 0.7)):
        write_run(tmp_path / "sweep", 0.0, 0, target=target[val], pred=fake_predictions(target[val], corr, 0.5, np.random.default_rng(1)),
                  train_index=train, val_index=val, data_path=path, overrides={"optimizer.lr": lr})  # fmt: skip
    summary, text = analyze(tmp_path / "sweep", tmp_path)
    assert summary["factor"] == "optimizer.lr" and "Effect of optimizer.lr" in text
    table = pd.read_csv(tmp_path / "results" / "optimizer_lr_table.csv")
    assert list(table["optimizer.lr"]) == [0.001, 0.002]


def test_baseline_note_of_folds_with_different_ridge_alphas_gives_their_range():
    scores = {"val_r2": 0.5, "val_variance_ratio": 0.9}
    b = {"available": True, "n_folds": 16, "n_train": None, "n_val": 933, "mean_predictor": scores,
         "ridge": {**scores, "alpha": [0.1, 3.0, 10.0]}}  # fmt: skip
    (line,) = baseline_lines(b)
    assert line.startswith("Baselines per fold, pooled over 16 held-out flights (933 samples)") and "alpha = 0.1 to 10 by fold" in line
