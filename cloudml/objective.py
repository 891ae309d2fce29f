"""What a job returns to a Hydra sweeper: the objective named in config, read from its summary.json.

    objective: val_r2                                   # one number: a float is returned
    objective: [val_r2, abs_log_variance_ratio]         # several: a list is returned (Pareto search)

The value is the job's recorded final metric, so a skipped (already finished) job returns what it
returned the first time. A job that did not complete (failed, diverged, interrupted) returns None:
a sweeper counts it as a failed trial instead of learning from the numbers of a run that broke.
Not NaN: Optuna 2.10 refuses a NaN value, and hydra-optuna-sweeper 1.3.0 then fails the trial a
second time with the same value, which raises and ends the study. Imports neither torch nor
Lightning (a resolver uses it at config time).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Union

from cloudml.errors import CloudMLError


def _final(key: str) -> Callable[[dict], float]:
    return lambda final: final.get(key)


def _abs_log_ratio(final: dict) -> float:
    ratio = final.get("val_variance_ratio")
    return abs(math.log(ratio)) if isinstance(ratio, (int, float)) and ratio > 0 else math.nan


# name -> (value from summary.json's `final`, the direction a sweeper should take)
OBJECTIVES: dict = {
    "val_r2": (_final("val_r2"), "maximize"),
    "val_mae": (_final("val_mae"), "minimize"),
    "val_rmse": (_final("val_rmse"), "minimize"),
    "abs_log_variance_ratio": (_abs_log_ratio, "minimize"),  # 0 when var(pred) = var(y)
}


def names(objective) -> list:
    """The objective setting as a list of known names (one-line CloudMLError otherwise)."""
    listed = [objective] if isinstance(objective, str) else list(objective or [])
    unknown = [n for n in listed if n not in OBJECTIVES]
    if not listed or unknown:
        given = unknown[0] if unknown else repr(objective)
        raise CloudMLError(f"objective={given}: expected one or a list of {', '.join(OBJECTIVES)}")
    return listed


def directions(objective) -> list:
    """`maximize`/`minimize` per objective, for a sweeper's `direction` (resolver cloudml.directions)."""
    return [OBJECTIVES[n][1] for n in names(objective)]


def value(objective, summary: dict) -> Union[float, list, None]:
    """The objective of a job from its summary: a float for one name, a list for several; None
    unless the job completed with every value finite."""
    listed = names(objective)
    final = (summary.get("final") or {}) if summary.get("status") == "completed" else {}
    values = [OBJECTIVES[name][0](final) for name in listed]
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in values):
        return None
    values = [float(x) for x in values]
    return values[0] if isinstance(objective, str) else values


def job_objective(objective, out_dir: Path) -> Union[float, list, None]:
    """`value` for the job in `out_dir`; None when its summary.json is absent or cannot be trusted."""
    from cloudml import rundir  # numpy and yaml only when a job ends, not when conf/ resolves

    try:
        summary = rundir.read_summary(out_dir)
    except (rundir.RunFileError, OSError):
        summary = {}
    return value(objective, summary)


def plugin_preset_trap(argv: list) -> Optional[str]:
    """The one-line error for the Optuna plugin's own preset (`hydra/sweeper=optuna`) without a
    direction: it minimises by default, so it would search for the worst R²."""
    from cloudml.extras import choices

    if ("hydra/sweeper", "optuna") in choices(argv) and not any(a.startswith("hydra.sweeper.direction=") for a in argv):
        return ("hydra/sweeper=optuna minimizes by default: use hparams_search=optuna (or optuna_pareto), "
                "which take the objective's direction, or give hydra.sweeper.direction")  # fmt: skip
    return None
