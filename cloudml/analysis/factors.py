"""Which factor a sweep varies: the command-line settings whose values differ between its runs.

A run's setting is its overrides (`.hydra/overrides.yaml`) without the keys that do not change
what it computes (those Hydra leaves out of the job directory's name), without `seed` (seeds are
replicates) and without `data.split.fold` (leave-one-flight-out folds are pooled, never a factor).
`loss.variance_lambda` gives the Section 2 analysis, `model` the Section 3 ablation, any other
key the same table under its own name.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import yaml

from cloudml.errors import CloudMLError

LAMBDA, MODEL = "loss.variance_lambda", "model"
NOT_FACTORS = ("seed", "data.split.fold")
COLUMN = {LAMBDA: "variance_lambda", MODEL: "model"}  # run-table columns that hold these factors
MODEL_ORDER = ("cnn", "cnn_spatial", "cnn_spatial_temporal", "cnn_spatial_multiscale", "transformer")


def setting(overrides: dict, excluded: list) -> dict:
    """The part of a run's overrides that says what it computes, apart from seed and fold."""
    skip = set(excluded) | set(NOT_FACTORS)
    return {k: v for k, v in overrides.items() if k not in skip and not k.startswith("hydra")}


def column(factor: str) -> str:
    """The run-table column holding `factor`'s level."""
    return COLUMN.get(factor, factor)


def level_value(text):
    """An override's value as a number where it is one (so levels sort numerically), else as text."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return value if math.isfinite(value) else text


def varying(runs: pd.DataFrame) -> dict:
    """factor -> its sorted distinct levels, for every setting key whose value differs between runs."""
    keys = sorted({k for s in runs["setting"] for k in s})
    out = {}
    for key in keys:
        values = {str(s.get(key, "(default)")) for s in runs["setting"]}
        if len(values) > 1:
            out[key] = sorted(values)
    return out


def _describe(found: dict) -> str:
    return "; ".join(f"{k}: {', '.join(v[:6])}{', ...' if len(v) > 6 else ''}" for k, v in found.items())


SWEPT = re.compile(r"^(range|choice|interval|tag|glob)\(|,")


def latest_launch(sweep_dir: Path) -> dict | None:
    """The overrides of the sweep directory's latest `train.py -m` launch (Hydra's multirun.yaml):
    {key: None for a swept key, value for a fixed one}; None when it cannot be read."""
    try:
        task = yaml.safe_load((Path(sweep_dir) / "multirun.yaml").read_text(encoding="utf-8"))["hydra"]["overrides"]["task"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    pairs = (str(item).lstrip("+~").partition("=") for item in task or [])
    return {key: None if SWEPT.search(value) else value for key, sep, value in pairs if sep}


def _of_launch(runs: pd.DataFrame, launch: dict) -> pd.Series:
    """Which runs the launch made: every fixed override of the launch matches, no other key is set."""
    fixed = {k: v for k, v in launch.items() if v is not None and k not in NOT_FACTORS}
    return runs["setting"].map(lambda s: set(s) <= set(launch) and all(level_value(s.get(k)) == level_value(v)
                                                                       for k, v in fixed.items()))  # fmt: skip


def select(runs: pd.DataFrame, factor: str | None, fixed: dict, launch: dict | None = None) -> tuple[str, pd.DataFrame, str | None]:
    """(the factor to analyse, the runs at the `fixed` values of the other keys, a note or None).

    Without `factor`, the one varying key (λ when nothing varies). Where several keys vary and
    the sweep directory's latest launch varied one, that launch's runs are analysed (with a note
    saying so); otherwise several varying keys are refused with one line naming them, never
    mixed: `factor=` picks one, `fixed=` pins the others."""
    note = None
    if factor is None and not fixed and len(varying(runs)) > 1 and launch:
        mine = runs[_of_launch(runs, launch)]
        if len(mine) and len(varying(mine)) <= 1:
            note = (f"the sweep directory holds runs of several settings ({_describe(varying(runs))}); analysing its "
                    f"latest launch ({len(mine)} runs; factor=... 'fixed={{...}}' chooses others)")  # fmt: skip
            runs = mine
    for key, value in (fixed or {}).items():
        keep = runs["setting"].map(lambda s: level_value(s.get(key)) == level_value(value))
        if not keep.any():
            raise CloudMLError(f"fixed.{key}={value}: no run of the sweep has it (found {_describe(varying(runs)) or 'no varying setting'})")
        runs = runs[keep]
    found = varying(runs)
    if factor is None:
        if len(found) > 1:
            raise CloudMLError(f"the sweep varies {len(found)} settings ({_describe(found)}); analyse one at a time: "
                               f"factor=<one of {', '.join(found)}> with the others fixed, e.g. "
                               f"'fixed={{{next(iter(found))}: {found[next(iter(found))][0]}}}'")  # fmt: skip
        factor = next(iter(found), LAMBDA)
    others = {k: v for k, v in found.items() if k != factor}
    if others:
        raise CloudMLError(f"factor={factor}: the sweep also varies {_describe(others)}; fix them, e.g. "
                           f"'fixed={{{next(iter(others))}: {others[next(iter(others))][0]}}}'")  # fmt: skip
    if factor not in (LAMBDA, MODEL) and factor not in found:
        raise CloudMLError(f"factor={factor}: not a setting of this sweep's runs (they vary {', '.join(found) or 'nothing'})")
    runs = runs.copy()
    if factor not in COLUMN:
        runs[factor] = runs["setting"].map(lambda s: level_value(s.get(factor, "(default)")))
    return factor, runs, note


def order(factor: str, levels, program=()) -> list:
    """Levels in the program's order (the model ablation's steps; λ numerically), then the others sorted."""
    levels = set(levels) | set(program)
    if factor == MODEL:
        known = [m for m in MODEL_ORDER if m in levels]
        return known + sorted(levels - set(known), key=str)
    numeric = all(isinstance(v, (int, float)) for v in levels)
    return sorted(levels) if numeric else sorted(levels, key=str)
