"""Hydra's Optuna sweeper drives train.py: each job returns its objective read from summary.json,
a seeded 3-trial search over a continuous λ completes, re-running it completes nothing new, and
analyze.py reads it like any sweep; the Pareto preset returns both objectives and reports the set."""

import json
import math

import pandas as pd
import pytest
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the search extra is not installed (pip install -e '.[search]')")

from conftest import TINY_RUN, jobs_by_lambda, run_cli  # noqa: E402


def search(sweep_dir, cli_env, preset, trials):
    result = run_cli("train.py", "-m", f"hparams_search={preset}", "loss.variance_lambda=interval(0,10)",
                     f"hydra.sweeper.n_trials={trials}", *TINY_RUN, f"hydra.sweep.dir={sweep_dir}", env=cli_env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def summaries(sweep_dir) -> dict:
    return {lam: json.loads((job / "summary.json").read_text()) for lam, job in jobs_by_lambda(sweep_dir).items()}


def test_a_seeded_optuna_search_over_lambda_completes_and_analyze_reads_it(tmp_path, cli_env):
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    first = search(sweep_dir, cli_env, "optuna", 3)
    runs = summaries(sweep_dir)
    assert len(runs) == 3 and all(0 < lam < 10 and run["status"] == "completed" for lam, run in runs.items())
    study = OmegaConf.load(sweep_dir / "optimization_results.yaml")  # the study's result, beside the jobs
    best = max(runs, key=lambda lam: runs[lam]["final"]["val_r2"])
    assert study.best_params["loss.variance_lambda"] == best
    assert study.best_value == runs[best]["final"]["val_r2"]
    assert first.stdout.count("[cloudml] epoch ") == 3 * 2

    again = search(sweep_dir, cli_env, "optuna", 3)  # the same proposals: every job is found finished
    assert again.stdout.count("already finished, skipped") == 3 and summaries(sweep_dir).keys() == runs.keys()

    result = run_cli("analyze.py", f"sweep_dir={sweep_dir}", f"results_dir={results}", "lambdas=[]",
                     f"selected_loss_config={tmp_path / 'selected.yaml'}", env=cli_env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(results / "section2_table2.csv")
    assert sorted(table["variance_lambda"]) == pytest.approx(sorted(runs))
    for lam, run in runs.items():
        row = table[table["variance_lambda"].sub(lam).abs() < 1e-9].iloc[0]
        assert float(row["final_r2"]) == pytest.approx(run["final"]["val_r2"])


def test_the_pareto_preset_returns_r2_and_abs_log_variance_ratio_and_reports_the_pareto_set(tmp_path, cli_env):
    sweep_dir = tmp_path / "sweep"
    result = search(sweep_dir, cli_env, "optuna_pareto", 2)
    assert "Directions: ['maximize', 'minimize']" in result.stdout + result.stderr
    points = {lam: (run["final"]["val_r2"], abs(math.log(run["final"]["val_variance_ratio"])))
              for lam, run in summaries(sweep_dir).items()}  # fmt: skip
    solutions = OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml").solutions)
    assert solutions, "no Pareto set"
    for s in solutions:
        assert s["values"] == pytest.approx(list(points[s["params"]["loss.variance_lambda"]]))
    dominated = {a for a, (r2, v) in points.items() for b, (r2b, vb) in points.items()
                 if r2b >= r2 and vb <= v and (r2b, vb) != (r2, v)}  # fmt: skip
    assert {s["params"]["loss.variance_lambda"] for s in solutions} == set(points) - dominated


def test_the_optuna_plugins_own_preset_is_refused_without_a_direction(cli_env):
    result = run_cli("train.py", "-m", "hydra/sweeper=optuna", "loss.variance_lambda=interval(0,10)", env=cli_env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("train.py: error: hydra/sweeper=optuna minimizes by default") and result.stderr.count("\n") == 1


def test_a_failed_trial_returns_none_and_the_study_goes_on(tmp_path, cli_env):
    sweep_dir = tmp_path / "sweep"
    tiny = [o for o in TINY_RUN if not o.startswith("data.batch_size=")]  # a fixed value would win over the choice
    result = run_cli("train.py", "-m", "hparams_search=optuna", "loss.variance_lambda=1", "data.batch_size=choice(16,1000)",
                     "hydra.sweeper.n_trials=2", *tiny, f"hydra.sweep.dir={sweep_dir}", env=cli_env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep_dir.glob("*/summary.json"))
    assert statuses == ["completed", "failed"]  # seed 0 draws both batch sizes; 1000 exceeds the training split
    assert "Failed experiment: Return value must be float-castable. Got 'None'." in result.stdout + result.stderr
    assert OmegaConf.load(sweep_dir / "optimization_results.yaml").best_params["data.batch_size"] == 16
