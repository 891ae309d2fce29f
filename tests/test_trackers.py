"""logger=tensorboard / mlflow / wandb through the real CLI on a 2-job sweep, read back with each
tool's own reader: every job's metrics equal its history.csv, its config (λ, seed) is there, and
the jobs of a sweep are grouped (a TensorBoard dir per job, one MLflow experiment, one W&B group)."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

pytest.importorskip("tensorboard", reason="the trackers extra is not installed (pip install -e '.[trackers]')")
pytest.importorskip("mlflow", reason="the trackers extra is not installed")
pytest.importorskip("wandb", reason="the trackers extra is not installed")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from conftest import TINY_RUN, jobs_by_lambda, run_cli  # noqa: E402

NAME = "tracked"


@pytest.fixture(scope="module")
def tracked_sweep(tmp_path_factory):
    """λ = 0, 0.5 with all three trackers in one process (the basic launcher), 2 epochs each."""
    root = tmp_path_factory.mktemp("tracked")
    sweep_dir, store = root / "sweep", root / "mlruns"
    result = run_cli("train.py", "-m", "loss.variance_lambda=0,0.5", *TINY_RUN, f"name={NAME}", "seed=3",
                     "logger=[tensorboard,mlflow,wandb]", f"logger.mlflow.tracking_uri=file:{store}",
                     f"hydra.sweep.dir={sweep_dir}", env={"CLOUDML_CACHE": str(root / "cache")})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = jobs_by_lambda(sweep_dir)
    assert sorted(jobs) == [0.0, 0.5]
    return {"jobs": jobs, "store": store, "result": result}


def history(job) -> pd.DataFrame:
    return pd.read_csv(job / "history.csv")


def test_tensorboard_events_of_each_job_hold_val_r2_per_epoch_as_history_csv(tracked_sweep):
    for lam, job in tracked_sweep["jobs"].items():
        events = EventAccumulator(str(job / "tensorboard"))
        events.Reload()
        for metric in ("val_r2", "val_variance_ratio", "train_loss"):
            logged = [e.value for e in events.Scalars(metric)]
            assert logged == pytest.approx(history(job)[metric].tolist(), rel=1e-6), metric
        assert any(tag.startswith("lr-") for tag in events.Tags()["scalars"])  # the lr of every step
        hparams = yaml.safe_load((job / "tensorboard" / "hparams.yaml").read_text())  # the resolved config
        assert hparams["loss"]["variance_lambda"] == lam and hparams["seed"] == 3 and hparams["job_dir"] == str(job)


def test_mlflow_store_has_one_experiment_per_sweep_name_with_each_jobs_metrics_and_lambda(tracked_sweep, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 opens its file store only when asked
    client = MlflowClient(f"file:{tracked_sweep['store']}")
    experiment = client.get_experiment_by_name(NAME)
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert len(runs) == 2
    for lam, job in tracked_sweep["jobs"].items():
        run = runs[job.name]  # named by the job's overrides
        assert run.info.status == "FINISHED"
        assert float(run.data.params["loss/variance_lambda"]) == lam and run.data.params["seed"] == "3"
        assert run.data.params["job_dir"] == str(job)[:250]  # Lightning cuts MLflow params to 250 characters
        logged = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "val_r2"), key=lambda m: m.step)]
        assert logged == pytest.approx(history(job)["val_r2"].tolist(), rel=1e-6)


def wandb_records(run_dir, *flags) -> str:
    """W&B's own reader of a run's .wandb log (`wandb leet inspect`)."""
    wandb_cli = [sys.executable, "-c", "from wandb.cli.cli import cli; cli()"]
    result = subprocess.run([*wandb_cli, "leet", "inspect", "--json", *flags, str(run_dir)], capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_wandb_offline_run_of_each_job_holds_its_metrics_and_config_in_one_group(tracked_sweep):
    for lam, job in tracked_sweep["jobs"].items():
        (run_dir,) = (job / "wandb").glob("offline-run-*")  # a run of its own, not the previous job's
        records = [json.loads(line) for line in wandb_records(run_dir).splitlines() if line.strip()]
        rows = [r["history"]["item"] for r in records if r.get("type") == "history"]
        logged = [row["val_r2"] for row in rows if "val_r2" in row]
        assert logged == pytest.approx(history(job)["val_r2"].tolist(), rel=1e-6)
        (run,) = [r["run"] for r in records if r.get("type") == "run"]
        assert run["run_group"] == NAME and run["display_name"] == job.name
        summary = json.loads(wandb_records(run_dir, "--summary"))
        assert summary["config"]["loss"]["variance_lambda"] == lam and summary["config"]["seed"] == 3


def test_trackers_keep_the_console_quiet(tracked_sweep):
    result = tracked_sweep["result"]
    assert "wandb:" not in result.stdout + result.stderr  # W&B's banners and sync hints
    assert "Tip" not in result.stdout + result.stderr
    assert "Creating it" not in result.stderr  # Lightning's note on a new MLflow experiment
