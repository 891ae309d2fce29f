"""The objective a job returns to a sweeper, read from its summary.json (no training here)."""

import math

import pytest

from cloudml import objective
from cloudml.errors import CloudMLError

COMPLETED = {"status": "completed", "final": {"val_r2": 0.4, "val_variance_ratio": 0.5, "val_mae": 0.2, "val_rmse": 0.3}}


def test_one_name_gives_a_float_and_a_list_gives_a_list():
    assert objective.value("val_r2", COMPLETED) == 0.4
    assert objective.value(["val_r2", "abs_log_variance_ratio"], COMPLETED) == pytest.approx([0.4, math.log(2)])
    assert objective.value(["val_mae"], COMPLETED) == [0.2]


@pytest.mark.parametrize("status", ["diverged", "failed", "interrupted", "running"])
def test_a_job_that_did_not_complete_returns_none_so_a_sweeper_counts_a_failed_trial(status):
    summary = {**COMPLETED, "status": status}
    assert objective.value("val_r2", summary) is None
    assert objective.value(["val_r2", "abs_log_variance_ratio"], summary) is None


def test_a_job_without_a_summary_or_with_a_missing_value_returns_none(tmp_path):
    assert objective.job_objective("val_r2", tmp_path) is None
    assert objective.value(["val_r2", "val_mae"], {"status": "completed", "final": {"val_r2": 0.4}}) is None


def test_directions_follow_the_objective():
    assert objective.directions("val_r2") == ["maximize"]
    assert objective.directions(["val_r2", "abs_log_variance_ratio"]) == ["maximize", "minimize"]


def test_an_unknown_objective_is_one_line():
    with pytest.raises(CloudMLError) as err:
        objective.directions("val_loss")
    assert str(err.value) == "objective=val_loss: expected one or a list of val_r2, val_mae, val_rmse, abs_log_variance_ratio"


def test_the_optuna_plugins_own_preset_needs_a_direction():
    line = objective.plugin_preset_trap(["-m", "hydra/sweeper=optuna", "loss.variance_lambda=interval(0,10)"])
    assert line == ("hydra/sweeper=optuna minimizes by default: use hparams_search=optuna (or optuna_pareto), "
                    "which take the objective's direction, or give hydra.sweeper.direction")  # fmt: skip
    assert objective.plugin_preset_trap(["-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=maximize"]) is None
    assert objective.plugin_preset_trap(["-m", "hparams_search=optuna"]) is None
