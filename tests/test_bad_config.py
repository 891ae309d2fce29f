"""Bad settings on the command line: train.py and analyze.py exit 2 with one line on stderr that
names the setting, its value and what was expected, before any work is done; nothing is written
where it should not be."""

import numpy as np
import pytest

from fakes import fake_predictions, write_run
from conftest import REPO, run_cli, write_h5

SMALL_MODEL = ["model.dim=16", "model.channels=[8,16]", "model.layers=1", "trainer.max_epochs=1", "data.batch_size=8"]
TRAIN_CASES = {
    "negative_lambda": (["loss.variance_lambda=-1"], "loss.variance_lambda=-1: expected a finite number >= 0"),
    "non_numeric_lambda": (["loss.variance_lambda=abc"], "loss.variance_lambda='abc': expected a number >= 0"),
    "zero_epochs": (["trainer.max_epochs=0"], "trainer.max_epochs=0: expected an integer >= 1"),
    "negative_epochs": (["trainer.max_epochs=-1"], "trainer.max_epochs=-1: expected an integer >= 1"),
    "batch_larger_than_training_split": (["data.batch_size=1000"], "data.batch_size=1000: expected 1..40 (the training split's size)"),
    "unknown_model": (["model=resnet"], "model=resnet: no such config in conf/model/ (expected one of cnn, cnn_spatial, cnn_spatial_multiscale, cnn_spatial_temporal, transformer)"),
    "missing_scratch_dir": (["data.memory_budget_mb=0", "data.scratch_dir=/nonexistent/scratch"], "data.scratch_dir=/nonexistent/scratch: No such file or directory (expected a writable directory)"),
    "unknown_data": (["data=era5"], "data=era5: no such config in conf/data/ (expected one of default, synthetic_weak)"),
    "unknown_estimator": (["loss.estimator=median"], "loss.estimator='median': expected one of plugin, halves"),
    "halves_with_batch_denominator": (["loss.estimator=halves", "loss.denominator=batch"], "loss.estimator=halves: expected loss.denominator=dataset, got 'batch' (a ratio of batch variances is biased whichever way it is split)"),
    "halves_with_tiny_batches": (["loss.estimator=halves", "data.batch_size=2"], "data.batch_size=2: loss.estimator=halves needs batches of at least 4 samples"),
    "negative_spike_factor": (["verdicts.loss_spike_factor=-1"], "verdicts.loss_spike_factor=-1: expected a number > 0"),
    "fractional_drift_window": (["verdicts.drift_window=2.5"], "verdicts.drift_window=2.5: expected an integer >= 1"),
}  # fmt: skip


def one_line_error(result, prog: str, message: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"{prog}: error: {message}"], result.stderr


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_bad_training_setting_is_a_one_line_error_before_training(tmp_path, cli_env, case):
    overrides, message = TRAIN_CASES[case]
    data = write_h5(tmp_path / "data.h5")  # 3 flights of 20: 40 training samples
    run_dir = tmp_path / "run"
    result = run_cli("train.py", f"data.path={data}", f"hydra.run.dir={run_dir}", *SMALL_MODEL, *overrides, env=cli_env)
    one_line_error(result, "train.py", message)
    written = {p.name for p in run_dir.iterdir()} if run_dir.exists() else set()
    assert written <= {".hydra", "identity.json", "summary.json", "train.log"}  # nothing trained


def test_unknown_group_in_a_sweep_is_refused_before_any_job_starts(tmp_path, cli_env):
    sweep_dir = tmp_path / "sweep"
    result = run_cli("train.py", "-m", "model=cnn,resnet", f"hydra.sweep.dir={sweep_dir}", env=cli_env)
    one_line_error(result, "train.py", "model=resnet: no such config in conf/model/ (expected one of cnn, cnn_spatial, "
                                       "cnn_spatial_multiscale, cnn_spatial_temporal, transformer)")  # fmt: skip
    assert not sweep_dir.exists()


@pytest.fixture
def sweep(tmp_path):
    """A small sweep of run directories in the format training writes (no training needed)."""
    target = np.linspace(0.2, 1.8, 40)
    for lam in (0, 1):
        pred = fake_predictions(target, 0.7, 0.9, np.random.default_rng(0))
        write_run(tmp_path / "sweep", lam, target=target, pred=pred, train_index=np.arange(60), val_index=np.arange(60, 100))
    return tmp_path / "sweep"


def analyze(tmp_path, *args):
    return run_cli(str(REPO / "analyze.py"), *args, f"selected_loss_config={tmp_path / 'selected.yaml'}", cwd=tmp_path)


@pytest.mark.parametrize("kind", ["missing", "a_file", "empty"])
def test_bad_sweep_dir_is_a_one_line_error(tmp_path, kind):
    path = tmp_path / kind
    messages = {
        "missing": f"sweep_dir {path} does not exist (expected a sweep directory of job directories holding summary.json)",
        "a_file": f"sweep_dir {path} is not a directory (expected a sweep directory of job directories holding summary.json)",
        "empty": f"sweep_dir {path} holds no runs (expected job directories with summary.json or .hydra/config.yaml, at most 2 levels down)",
    }  # fmt: skip
    if kind == "a_file":
        path.write_text("loss.variance_lambda=0\n")
    elif kind == "empty":
        path.mkdir()
    before = sorted(tmp_path.rglob("*"))
    one_line_error(analyze(tmp_path, f"sweep_dir={path}", f"results_dir={tmp_path / 'results'}"), "analyze.py", messages[kind])
    assert sorted(tmp_path.rglob("*")) == before + ([tmp_path / "results"] if kind == "empty" else [])  # no Hydra outputs/ either


def test_bad_verdict_threshold_for_analyze_is_a_one_line_error(tmp_path, sweep):
    one_line_error(analyze(tmp_path, f"sweep_dir={sweep}", f"results_dir={tmp_path / 'results'}", "verdicts.spike_window_steps=0"),
                   "analyze.py", "verdicts.spike_window_steps=0: expected an integer >= 1")  # fmt: skip


def test_results_dir_below_a_regular_file_is_a_one_line_error(tmp_path, sweep):
    """Runs as root here, where a read-only directory is still writable: a path below a regular
    file fails for every user (ENOTDIR)."""
    (tmp_path / "notes.txt").write_text("x")
    results = tmp_path / "notes.txt" / "results"
    one_line_error(analyze(tmp_path, f"sweep_dir={sweep}", f"results_dir={results}"), "analyze.py",
                   f"results_dir {results} is not a writable directory (Not a directory)")  # fmt: skip
    assert not (tmp_path / "selected.yaml").exists()


def test_result_file_that_cannot_be_replaced_is_a_one_line_error(tmp_path, sweep):
    """A directory where a result file belongs (as a full disk would) stops the analysis with one line."""
    results = tmp_path / "results"
    (results / "section2_table2.csv").mkdir(parents=True)
    result = analyze(tmp_path, f"sweep_dir={sweep}", f"results_dir={results}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("analyze.py: warning: ")]
    assert errors == [f"analyze.py: error: {results / 'section2_table2.csv'}: cannot be written (Is a directory); "
                      f"expected results_dir {results} to be a writable directory"]  # fmt: skip
    assert sorted(p.name for p in results.iterdir()) == ["section2_table2.csv"]  # no temp file left behind
    assert not (tmp_path / "selected.yaml").exists()
