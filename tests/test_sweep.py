"""The Section 2 workflow through the real CLI: a λ sweep by Hydra multirun (basic and joblib
launchers), re-run skipping finished jobs, analyze.py on what the runs wrote, loss=selected."""

import json
import shutil

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import REPO, jobs_by_lambda, TINY_RUN, run_cli


def sweep(sweep_dir, cli_env, *extra):
    result = run_cli("train.py", "-m", "loss.variance_lambda=0,1", *TINY_RUN, f"hydra.sweep.dir={sweep_dir}", *extra, env=cli_env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_sweep_then_analyze_gives_table2_from_the_runs(tmp_path, cli_env):
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    sweep(sweep_dir, cli_env)
    jobs = jobs_by_lambda(sweep_dir)
    assert sorted(jobs) == [0.0, 1.0] and all(f"loss.variance_lambda={lam:g}" in jobs[lam].name for lam in jobs)
    summaries = {lam: json.loads((job / "summary.json").read_text()) for lam, job in jobs.items()}

    result = run_cli("analyze.py", f"sweep_dir={sweep_dir}", f"results_dir={results}",
                     f"selected_loss_config={tmp_path / 'conf' / 'loss' / 'selected.yaml'}", env=cli_env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Table 2" in result.stdout and "Decision:" in result.stdout
    for name in ("section2_table2.csv", "section2_table2.txt", "section2_table2.md", "section2_summary.json",
                 "section2_distributions.png", "section2_training_curves.png"):  # fmt: skip
        assert (results / name).stat().st_size > 0, name
    table = pd.read_csv(results / "section2_table2.csv", dtype=str).set_index("variance_lambda")
    for lam, run in summaries.items():
        assert float(table.loc[str(lam), "final_r2"]) == pytest.approx(run["final"]["val_r2"])
        assert float(table.loc[str(lam), "variance_ratio_pct"]) == pytest.approx(100 * run["final"]["val_variance_ratio"])
    for lam in ("0.5", "2.0", "5.0", "10.0"):
        assert table.loc[lam, "final_r2"] == "[pending]"
    summary = json.loads((results / "section2_summary.json").read_text())
    assert summary["decision"] in ("go", "re-evaluate") and len(summary["rows"]) == 2
    assert summary["baselines"]["available"] and summary["baselines"]["n_val"] == 40


def test_rerunning_the_sweep_skips_finished_jobs_byte_for_byte(tmp_path, cli_env):
    sweep_dir = tmp_path / "sweep"
    sweep(sweep_dir, cli_env)
    files = {p: p.read_bytes() for p in sweep_dir.glob("*/*") if p.is_file() and p.suffix in (".csv", ".json", ".npz")}
    again = sweep(sweep_dir, cli_env)
    assert again.stdout.count("already finished, skipped") == 2
    assert {p: p.read_bytes() for p in files} == files


def test_joblib_launcher_runs_the_sweep_in_parallel_processes(tmp_path, cli_env):
    sweep_dir = tmp_path / "sweep"
    result = sweep(sweep_dir, cli_env, "hydra/launcher=joblib")
    assert "Joblib" in result.stdout + result.stderr
    jobs = jobs_by_lambda(sweep_dir)
    assert sorted(jobs) == [0.0, 1.0]
    for job in jobs.values():
        assert json.loads((job / "summary.json").read_text())["status"] == "completed"
    assert "1 torch threads" in result.stdout  # loky caps each of the 2 workers to 1 thread: no oversubscription


def test_loss_selected_composes_the_lambda_analyze_wrote(tmp_path, cli_env):
    conf = tmp_path / "conf"  # a copy of conf/, so a selected.yaml of the user's own sweep cannot interfere
    shutil.copytree(REPO / "conf", conf)
    (conf / "loss" / "selected.yaml").write_text("defaults:\n  - variance_preserving\n  - _self_\nvariance_lambda: 2.0\n")
    result = run_cli("train.py", "--config-path", str(conf), "loss=selected", "--cfg", "job", env=cli_env)
    assert result.returncode == 0, result.stderr
    loss = OmegaConf.create(result.stdout).loss
    assert loss.variance_lambda == 2.0 and loss.denominator == "dataset"


def test_experiment_configs_reproduce_the_program_sections(cli_env):
    transformer = OmegaConf.create(run_cli("train.py", "model=transformer", "--cfg", "job", env=cli_env).stdout).model
    assert transformer.space._target_ == "cloudml.models.Unchanged"  # every token goes on to the joint transformer
    for name, lam in (("section2_baseline", 0.0), ("section2_lambda_0.5", 0.5), ("section2_lambda_10", 10)):
        result = run_cli("train.py", f"+experiment={name}", "--cfg", "job", env=cli_env)
        cfg = OmegaConf.create(result.stdout)
        assert cfg.loss.variance_lambda == lam and cfg.trainer.max_epochs == 15 and cfg.model == transformer
