"""What train.py prints: a one-epoch run is a start banner, one line per epoch and an end line (no
Lightning tips or device announcements, which still reach train.log); a config choice whose
optional package is missing is one line naming the extra to install."""

import re
import subprocess
import sys

import pytest

from cloudml import extras
from cloudml.errors import CloudMLError
from conftest import REPO, TINY_RUN, run_cli

NOISE = ("Tip", "litlogger", "GPU available", "TPU available", "Loading `train_dataloader`", "`Trainer.fit` stopped")


def test_one_epoch_run_prints_a_banner_an_epoch_line_and_an_end_line_only(tmp_path, cli_env):
    run = tmp_path / "run"
    result = run_cli("train.py", *TINY_RUN, "trainer.max_epochs=1", f"hydra.run.dir={run}", env=cli_env)
    assert result.returncode == 0, result.stderr[-3000:]
    banner, epoch, end = result.stdout.splitlines()
    assert banner.startswith(f"[cloudml] {run}: new | model transformer")
    assert re.fullmatch(r"\[cloudml\] epoch 1/1 \| train_loss \S+ \| val_loss \S+ \| R² \S+ \| variance ratio \S+ \| [\d.]+ s", epoch)
    assert re.fullmatch(rf"\[cloudml\] {re.escape(str(run))}: completed \| 1/1 epochs \| R² -?[\d.]+ \| variance ratio [\d.]+ \| [\d.]+ s", end)
    for noise in NOISE:
        assert noise not in result.stdout + result.stderr, noise
    log = (run / "train.log").read_text()
    assert "GPU available" in log and "Tip" not in log  # Lightning's INFO lines go to the job's log, its ads nowhere


def test_a_progress_bar_replaces_the_epoch_lines(tmp_path, cli_env):
    result = run_cli("train.py", *TINY_RUN, "trainer.max_epochs=1", "trainer.enable_progress_bar=true",
                     f"hydra.run.dir={tmp_path / 'run'}", env=cli_env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 0" in result.stdout + result.stderr  # Lightning's bar: rich's on stdout if installed, else tqdm's on stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("[cloudml] epoch")]


def without(modules: list, *argv: str) -> subprocess.CompletedProcess:
    """train.py with `modules` made unimportable (None in sys.modules), as if their package were absent."""
    code = (f"import runpy, sys; sys.modules.update(dict.fromkeys({modules!r})); sys.argv = ['train.py', *{list(argv)!r}]; "
            "runpy.run_path('train.py', run_name='__main__')")  # fmt: skip
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("modules, argv, line", [
    (["hydra_plugins.hydra_joblib_launcher"], ["-m", "hydra/launcher=joblib"],
     "hydra/launcher=joblib needs hydra-joblib-launcher: pip install -e '.[cluster]'"),
    (["hydra_plugins.hydra_submitit_launcher"], ["-m", "hydra/launcher=slurm_cpu"],
     "hydra/launcher=slurm_cpu needs hydra-submitit-launcher: pip install -e '.[cluster]'"),
    (["wandb"], ["logger=[csv,wandb]"], "logger=wandb needs wandb: pip install -e '.[trackers]'"),
    (["tensorboard", "tensorboardX"], ["logger=tensorboard"], "logger=tensorboard needs tensorboard: pip install -e '.[trackers]'"),
    (["hydra_plugins.hydra_optuna_sweeper"], ["hparams_search=optuna_pareto"],
     "hparams_search=optuna_pareto needs hydra-optuna-sweeper: pip install -e '.[search]'"),
])  # fmt: skip
def test_a_choice_whose_package_is_missing_gets_one_line_naming_the_extra(modules, argv, line):
    result = without(modules, *argv)
    assert result.returncode == 2 and result.stderr == f"train.py: error: {line}\n", result.stderr[-2000:]
    assert result.stdout == ""


def test_a_tracker_chosen_inside_a_config_is_refused_in_the_same_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(CloudMLError, match=re.escape("logger=mlflow needs mlflow-skinny: pip install -e '.[trackers]'")):
        extras.require_loggers({"csv": {}, "mlflow": {}})


def test_an_unknown_name_in_a_list_of_choices_is_refused(cli_env):
    result = run_cli("train.py", "logger=[csv,neptune]", env=cli_env)
    assert result.returncode == 2
    assert result.stderr == ("train.py: error: logger=neptune: no such config in conf/logger/ "
                             "(expected one of csv, mlflow, none, tensorboard, wandb)\n")  # fmt: skip
