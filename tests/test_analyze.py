"""analyze.py and cloudml.analysis: Table 2, selection, decision, findings, broken runs.

Run directories are written in the format training writes, with known numbers
(tests/fakes.py): predictions with exact correlation ρ and variance ratio v, so a
run's R² is exactly 2ρ√v − v.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from cloudml.analysis import comparisons, findings, selection, table2
from cloudml.analysis.evidence import read_all_predictions, run_evidence
from cloudml.analysis.levels import summarise_levels
from cloudml.analysis.outputs import prepare_results_dir
from cloudml.analysis.report import analyze_sweep
from cloudml.analysis.runs import load_sweep, resolve_sweep_dir
from cloudml.analysis.stats import t_interval, t_quantile
from cloudml.analysis.tradeoff import run_tradeoff
from cloudml.errors import CloudMLError
from fakes import fake_predictions, write_h5, write_run

REPO = Path(__file__).resolve().parents[1]
TRAIN, VAL = np.arange(60), np.arange(60, 100)
TARGET = np.linspace(0.2, 1.8, VAL.size) ** 1.3  # km, skewed like cloud base heights
FLIGHT = np.arange(VAL.size) % 4  # four validation flights, interleaved so each spans the height range
LAMBDAS = [0, 0.5, 1, 2, 5, 10]


def r2_of(corr: float, ratio: float) -> float:
    """R² of an unbiased predictor with correlation ρ and variance ratio v."""
    return 2 * corr * math.sqrt(ratio) - ratio


def add_run(sweep: Path, lam: float, corr: float = 0.7, ratio: float = 0.9, seed: int = 0, **kw) -> Path:
    pred = fake_predictions(TARGET, corr, ratio, np.random.default_rng(seed + 100))
    return write_run(sweep, lam, seed, target=TARGET, pred=pred, train_index=TRAIN, val_index=VAL, flight=FLIGHT, **kw)


def add_diverged(sweep: Path, lam: float, epoch: int, seed: int = 0, **kw) -> Path:
    return write_run(sweep, lam, seed, target=TARGET, pred=None, train_index=TRAIN, val_index=VAL,
                     status="diverged", diverged_epoch=epoch, **kw)


def per_lambda(sweep: Path) -> pd.DataFrame:
    loaded = load_sweep(sweep)
    levels = sorted(set(LAMBDAS) | set(loaded.runs["variance_lambda"]))
    return summarise_levels(loaded.runs, "variance_lambda", levels, LAMBDAS, run_evidence(loaded, read_all_predictions(loaded)))


def compared(sweep: Path) -> dict:
    loaded = load_sweep(sweep)
    evidence = run_evidence(loaded, read_all_predictions(loaded))
    return comparisons.by_level(comparisons.compare_all(loaded.runs, "variance_lambda", LAMBDAS + [3.0], 0.0, evidence),
                                "variance_lambda")


def run_analyze(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "analyze.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_table2_selection_and_reports_broken_runs(tmp_path):
    sweep, results = tmp_path / "multirun" / "section2", tmp_path / "results"
    images = np.random.default_rng(0).random((100, 3, 8, 8), dtype=np.float32)
    data = write_h5(tmp_path / "data.h5", images, 0.5 + 2 * images[:, 0].mean(axis=(1, 2)),
                    scalars=np.zeros((100, 2)))
    add_run(sweep, 0, corr=0.5, ratio=0.1, data_path=data, oracle_r2=0.8)
    add_run(sweep, 0.5, corr=0.6, ratio=0.5, data_path=data)
    add_run(sweep, 1, corr=0.7, ratio=0.9, data_path=data)
    add_diverged(sweep, 2, epoch=7, data_path=data)
    add_run(sweep, 3, corr=0.65, ratio=1.0, data_path=data)  # a λ outside the program
    broken = add_run(sweep, 5, corr=0.9, ratio=1.0, data_path=data)
    (broken / "summary.json").write_text('{"status": "completed", "variance_lambda": 5, "fin')
    selected = tmp_path / "conf" / "loss" / "selected.yaml"

    proc = run_analyze(f"sweep_dir={sweep}", f"results_dir={results}", f"selected_loss_config={selected}")

    assert proc.returncode == 0, proc.stderr
    for name in ("table2.csv", "table2.txt", "table2.md", "summary.json", "distributions.png",
                 "training_curves.png", "tradeoff.png"):
        assert (results / f"section2_{name}").stat().st_size > 0, name
    table = pd.read_csv(results / "section2_table2.csv", dtype=str).set_index("variance_lambda")
    assert list(table.index) == ["0.0", "0.5", "1.0", "2.0", "3.0", "5.0", "10.0"]
    assert float(table.loc["1.0", "final_r2"]) == pytest.approx(r2_of(0.7, 0.9), abs=1e-9)
    assert float(table.loc["1.0", "variance_ratio_pct"]) == pytest.approx(90.0, abs=1e-9)
    assert float(table.loc["0.0", "final_r2"]) == pytest.approx(r2_of(0.5, 0.1), abs=1e-9)
    assert float(table.loc["0.0", "avg_base_loss"]) == pytest.approx(0.1)
    assert table.loc["1.0", "stability"] == "Stable"
    assert table.loc["2.0", "stability"] == "Unstable (diverged at epoch 7)"
    assert table.loc["2.0", "final_r2"] == "[diverged]"
    assert (table.loc["10.0", ["final_r2", "variance_ratio_pct", "avg_base_loss", "avg_var_loss",
                               "stability"]] == "[pending]").all()
    assert table.loc["5.0", "final_r2"] == "[pending]"  # its only run is broken

    for column in ("calibration_slope", "verdict", "r2_within_flight"):
        assert table.loc["1.0", column] not in (None, "", "[pending]"), column
    summary = json.loads((results / "section2_summary.json").read_text())
    chosen = summary["selected"]
    by_lam = {row["variance_lambda"]: row for row in summary["by_lambda"]}
    best = max((r for r in by_lam.values() if r["stable"]), key=lambda r: r["val_r2"])
    assert chosen["best_variance_lambda"] == best["variance_lambda"] == 1.0
    within = [lam for lam, r in by_lam.items() if r["stable"] and r["val_r2"] >= best["val_r2"] - chosen["standard_error"]]
    assert chosen["within_one_se"] == within  # the one-standard-error rule, then the ratio closest to 100 %
    assert chosen["variance_lambda"] == min(within, key=lambda lam: abs(1 - by_lam[lam]["val_variance_ratio"]))
    assert summary["decision"] == "go" and summary["decision_detail"]["cure_needed"] is True
    assert summary["criteria"]["same_lambda"]["value"] == [1.0, 3.0]  # λ=0.5 keeps only 50 %
    assert {c["variance_lambda"] for c in summary["comparisons"]} == {0.5, 1.0, 3.0}  # every completed λ > 0 vs λ=0
    assert all(c["method"].startswith("one seed: flight-cluster bootstrap") for c in summary["comparisons"])
    assert summary["rows"][0]["diagnosis"]["verdict"] in ("calibrated", "under-dispersed", "over-dispersed")
    assert [b["path"] for b in summary["broken_runs"]] == [broken.name]
    assert "not valid JSON" in summary["broken_runs"][0]["reason"]
    assert "broken run" in proc.stderr and str(broken) in proc.stderr
    assert len(summary["rows"]) == 5 and len(summary["findings"]) == 3
    assert summary["findings"][0].startswith("The baseline λ=0 collapsed") and "Diagnosis:" in summary["findings"][0]
    assert summary["baselines"]["ridge"]["val_r2"] > 0.98  # target is linear in a frame mean
    assert summary["baselines"]["mean_predictor"]["val_r2"] <= 0
    assert "2√R² − 1" in summary["theory"] and summary["interval_method"]
    assert "Table 2" in proc.stdout and "Decision: go" in proc.stdout

    cfg = OmegaConf.load(selected)
    assert cfg.variance_lambda == 1.0 and list(cfg.defaults) == ["variance_preserving", "_self_"]
    assert selected.read_text().startswith(f"# Written by analyze.py from {sweep}: ")
    txt = (results / "section2_table2.txt").read_text()
    assert "[pending]" in txt and "Theory:" in txt and "Baselines on the same split" in txt


def test_sweep_without_runs_and_unwritable_results_dir_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CloudMLError, match="holds no runs"):
        analyze_sweep(tmp_path / "empty", tmp_path, {}, tmp_path / "sel.yaml")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(CloudMLError, match="not a writable directory"):
        prepare_results_dir(tmp_path / "a_file" / "results", tmp_path)


def test_newest_sweep_under_multirun_is_the_default(tmp_path):
    for i, name in enumerate(["older", "newer"]):
        d = tmp_path / "multirun" / name
        d.mkdir(parents=True)
        (d / "multirun.yaml").write_text("x")
        os.utime(d / "multirun.yaml", (1000 + i, 1000 + i))
        os.utime(d, (1000 + i, 1000 + i))
    assert resolve_sweep_dir(None, tmp_path).name == "newer"
    with pytest.raises(CloudMLError, match="multirun"):
        resolve_sweep_dir(None, tmp_path / "elsewhere")


def test_selection_never_takes_an_unstable_lambda(tmp_path):
    add_run(tmp_path, 0, corr=0.5, ratio=0.2)
    add_run(tmp_path, 1, corr=0.7, ratio=0.9)
    add_run(tmp_path, 2, corr=0.9, ratio=0.9, stability="unstable", stability_reason="loss spikes")
    table = per_lambda(tmp_path)
    chosen = selection.select_lambda(table)
    assert chosen["variance_lambda"] == 1.0 and chosen["best_variance_lambda"] == 1.0
    assert table.set_index("variance_lambda").loc[2.0, "stability"] == "Unstable (loss spikes)"


def test_one_standard_error_rule_picks_the_ratio_closest_to_100_percent_within_noise(tmp_path):
    """λ=0.5 has the best mean R² over 3 seeds; λ=1 lies within one standard error of it with a
    variance ratio of exactly 100 %: the rule picks λ=1. With seeds that agree (a tiny SE), λ=0.5."""
    for seed, corr in enumerate([0.62, 0.75, 0.70]):  # R² spread of ~0.1 over seeds
        add_run(tmp_path / "noisy", 0.5, corr=corr, ratio=0.9, seed=seed)
        add_run(tmp_path / "noisy", 1, corr=corr - 0.02, ratio=1.0, seed=seed)
        add_run(tmp_path / "quiet", 0.5, corr=0.7, ratio=0.9, seed=seed)
        add_run(tmp_path / "quiet", 1, corr=0.68, ratio=1.0, seed=seed)
    noisy = selection.select_lambda(per_lambda(tmp_path / "noisy"))
    r2s = np.array([r2_of(c, 0.9) for c in (0.62, 0.75, 0.70)])
    assert noisy["best_variance_lambda"] == 0.5
    assert noisy["standard_error"] == pytest.approx(r2s.std(ddof=1) / math.sqrt(3), abs=1e-9)
    assert noisy["variance_lambda"] == 1.0 and noisy["within_one_se"] == [0.5, 1.0]
    assert "one standard error" in noisy["reason"] and "closest to 100 %" in noisy["reason"]
    quiet = selection.select_lambda(per_lambda(tmp_path / "quiet"))
    assert quiet["variance_lambda"] == 0.5 and quiet["within_one_se"] == [0.5]


def test_nothing_selected_when_no_stable_run(tmp_path):
    add_diverged(tmp_path, 0, epoch=3)
    chosen = selection.select_lambda(per_lambda(tmp_path))
    assert chosen["variance_lambda"] is None and chosen["reason"].startswith("No λ selected")


def test_decision_is_re_evaluate_when_no_lambda_meets_all_criteria(tmp_path):
    add_run(tmp_path, 0, corr=0.4, ratio=0.15)  # R² 0.16: below 0.2
    add_run(tmp_path, 1, corr=0.4, ratio=0.9)   # R² −0.14, ratio fine
    add_run(tmp_path, 2, corr=0.8, ratio=0.5, stability="unstable", stability_reason="spikes")
    table = per_lambda(tmp_path)
    crit = selection.success_criteria(table, min_r2=0.2, min_ratio=0.6)
    assert crit["r2"]["pass"] and crit["variance_ratio"]["pass"] and crit["stable"]["pass"]
    assert crit["same_lambda"] == {"description": "all three met by the same λ", "value": [], "pass": False}
    assert selection.decision(crit, compared(tmp_path))["decision"] == "re-evaluate"
    matrix = {row["variance_lambda"]: row for row in selection.decision_matrix(table, 0.3, (0.8, 1.2))}
    assert matrix[1.0]["variance_ratio"]["pass"] is True and matrix[1.0]["r2"]["pass"] is False
    assert matrix[10.0]["all_pass"] is None  # pending: unknown, not failed


def test_go_needs_a_lambda_above_zero_and_says_when_the_cure_was_not_needed(tmp_path):
    add_run(tmp_path / "only_baseline", 0, corr=0.9, ratio=0.8)  # λ=0 meets every criterion
    add_run(tmp_path / "only_baseline", 1, corr=0.3, ratio=0.9)  # λ=1 does not
    table = per_lambda(tmp_path / "only_baseline")
    detail = selection.decision(selection.success_criteria(table, 0.2, 0.6), compared(tmp_path / "only_baseline"))
    assert detail["decision"] == "re-evaluate" and detail["cure_needed"] is False
    assert detail["note"] == "λ=0 itself meets the criteria: the cure was not needed on this data"

    add_run(tmp_path / "both", 0, corr=0.9, ratio=0.8)
    add_run(tmp_path / "both", 1, corr=0.9, ratio=1.0)
    detail = selection.decision(selection.success_criteria(per_lambda(tmp_path / "both"), 0.2, 0.6), compared(tmp_path / "both"))
    assert detail["decision"] == "go" and detail["lambdas"] == [1.0] and detail["cure_needed"] is False


def test_seed_intervals_are_student_t_on_the_mean(tmp_path):
    params = [(0.70, 0.9), (0.72, 0.9), (0.66, 0.9)]
    for seed, (corr, ratio) in enumerate(params):
        add_run(tmp_path, 1, corr=corr, ratio=ratio, seed=seed)
        add_run(tmp_path, 2, corr=corr - 0.02, ratio=1.0, seed=seed)
    r2s = np.array([r2_of(c, v) for c, v in params])
    half = 4.302652729911275 * r2s.std(ddof=1) / math.sqrt(3)  # t(0.975, 2) from tables
    table = per_lambda(tmp_path).set_index("variance_lambda")
    assert table.loc[1.0, "val_r2"] == pytest.approx(r2s.mean(), abs=1e-12)
    assert table.loc[1.0, "val_r2_ci"] == pytest.approx((r2s.mean() - half, r2s.mean() + half), abs=1e-9)
    csv = table2.table2_csv(per_lambda(tmp_path), load_sweep(tmp_path).runs)
    lam1 = csv[csv["variance_lambda"] == 1.0]
    assert list(lam1["seed"]) == ["mean", 0, 1, 2]
    assert lam1["final_r2_ci_high"].iloc[0] == pytest.approx(r2s.mean() + half, abs=1e-9)
    assert list(lam1["final_r2"].iloc[1:]) == pytest.approx(list(r2s), abs=1e-12)
    assert table.loc[1.0, "val_r2_se"] == pytest.approx(r2s.std(ddof=1) / math.sqrt(3), abs=1e-12)


def test_t_quantiles_match_published_tables():
    for df, t in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (120, 1.980)]:
        assert t_quantile(0.975, df) == pytest.approx(t, abs=5e-4)
    assert t_interval([0.5]) == (None, None)


def test_rescaled_r2_matches_hand_computation():
    rng = np.random.default_rng(1)
    y = rng.gamma(2.0, 0.4, 500)
    pred = 0.1 + 0.3 * y + 0.05 * rng.standard_normal(500)  # biased, shrunk predictions
    scaled = pred.mean() + (pred - pred.mean()) * math.sqrt(y.var() / pred.var())
    hand = 1 - np.sum((scaled - y) ** 2) / np.sum((y - y.mean()) ** 2)
    out = run_tradeoff(pred, y)
    assert out["tradeoff_r2_at_unit_variance"] == pytest.approx(hand, abs=1e-12)
    assert out["tradeoff_variance_ratio"] == pytest.approx(pred.var() / y.var())
    unbiased = fake_predictions(y, 0.8, 0.3, rng)  # theory: 2ρ − 1 at v = 1
    assert run_tradeoff(unbiased, y)["tradeoff_r2_at_unit_variance"] == pytest.approx(0.6, abs=1e-9)


def test_findings_say_no_lambda_beats_the_baseline(tmp_path):
    add_run(tmp_path, 0, corr=0.8, ratio=0.6)     # R² 0.639, no collapse
    add_run(tmp_path, 1, corr=0.7, ratio=0.9)     # R² 0.428
    add_run(tmp_path, 5, corr=0.6, ratio=1.0)     # R² 0.200
    table = per_lambda(tmp_path)
    chosen = selection.select_lambda(table)
    sentences = findings.findings(table, chosen["variance_lambda"], compared(tmp_path),
                                  {"available": False, "reason": "no data"}, 0.2)  # fmt: skip
    assert sentences[0].startswith("Collapse did not occur at the baseline λ=0 (variance ratio 60.0 %, R² 0.639, one seed")
    assert "Diagnosis: " in sentences[0] and "calibration slope b = " in sentences[0]
    assert sentences[1].startswith("No λ beats the baseline: the best λ > 0 (λ=1: R² 0.428")
    assert "ΔR² = -0.211" in sentences[1]
    assert "baselines are unavailable (no data)" in sentences[2]


def test_findings_do_not_claim_a_win_within_seed_noise(tmp_path):
    for seed, corr in enumerate([0.60, 0.75, 0.68]):
        add_run(tmp_path, 0, corr=corr, ratio=0.5, seed=seed)
        add_run(tmp_path, 1, corr=corr + 0.01 * (-1) ** seed, ratio=0.5, seed=seed)  # +0.01, −0.01, +0.01
    text = findings.findings(per_lambda(tmp_path), 1.0, compared(tmp_path), {}, 0.2)[1]
    assert text.startswith("No λ beats the baseline") and "within noise" in text and "paired difference over seeds" in text


def test_run_without_summary_counts_as_running_and_hand_edited_one_is_broken(tmp_path, capsys):
    add_run(tmp_path, 0)
    running = tmp_path / "loss.variance_lambda=1,seed=0" / ".hydra"
    running.mkdir(parents=True)
    (running / "config.yaml").write_text("seed: 0\nloss:\n  variance_lambda: 1.0\n")
    edited = add_run(tmp_path, 2)
    summary = json.loads((edited / "summary.json").read_text())
    (edited / "summary.json").write_text(json.dumps({**summary, "variance_lambda": 0.5}))
    sweep = load_sweep(tmp_path)
    assert list(sweep.runs["status"]) == ["completed", "running"]
    assert sweep.broken == [{"path": edited.name, "reason": "summary.json says variance_lambda=0.5 "
                                                            "but .hydra/config.yaml says 2"}]
    assert capsys.readouterr().err.count("\n") == 1
    display = table2.table2_display(summarise_levels(sweep.runs, "variance_lambda", LAMBDAS, LAMBDAS, {})).set_index("λ")
    assert display.loc["1", "Final R²"] == "[running]" and display.loc["2", "Stability"] == "[pending]"


def test_network_against_ridge_claims_better_only_outside_ridges_interval():
    from cloudml.analysis.findings import _against

    ridge = {"val_r2": 0.626, "val_r2_ci": [0.344, 0.785]}
    assert _against(0.663, ridge) == "lies within ridge's interval: neither is shown better (unpaired)"
    assert _against(0.80, ridge) == "lies above ridge's whole interval"
    assert _against(0.30, ridge) == "lies below ridge's whole interval"
    assert _against(0.70, {"val_r2": 0.626}) == "is above ridge's (no interval)"
