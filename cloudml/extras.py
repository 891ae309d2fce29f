"""Config choices that need an optional package (a tracker, a launcher, a sweeper): one line naming
the extra to install when it is missing, instead of Hydra's "Could not find ..." or a traceback.

    python train.py -m ... hydra/launcher=joblib     # without the `cluster` extra:
    train.py: error: hydra/launcher=joblib needs hydra-joblib-launcher: pip install -e '.[cluster]'
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Optional

import yaml

# (config group, choice) -> (distribution to name, importable modules (any one will do), extra)
NEEDS = {
    ("logger", "tensorboard"): ("tensorboard", ("tensorboard", "tensorboardX"), "trackers"),
    ("logger", "mlflow"): ("mlflow-skinny", ("mlflow",), "trackers"),
    ("logger", "wandb"): ("wandb", ("wandb",), "trackers"),
    ("hydra/launcher", "joblib"): ("hydra-joblib-launcher", ("hydra_plugins.hydra_joblib_launcher",), "cluster"),
    ("hydra/launcher", "submitit_local"): ("hydra-submitit-launcher", ("hydra_plugins.hydra_submitit_launcher",), "cluster"),
    ("hydra/launcher", "submitit_slurm"): ("hydra-submitit-launcher", ("hydra_plugins.hydra_submitit_launcher",), "cluster"),
    ("hydra/sweeper", "optuna"): ("hydra-optuna-sweeper", ("hydra_plugins.hydra_optuna_sweeper",), "search"),
}  # fmt: skip


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: the module is set to None in sys.modules (import blocked)
        return False


def _requires(group: str, name: str, conf: Path) -> list:
    """(group, name) of the configs that conf/<group>/<name>.yaml builds on: its defaults list, as
    `- base` (same group), `- /group/name`, or `- override /group: name`."""
    try:
        defaults = (yaml.safe_load((conf / group / f"{name}.yaml").read_text(encoding="utf-8")) or {}).get("defaults")
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    found = []
    for entry in defaults or []:
        if isinstance(entry, str) and entry != "_self_":
            path = entry.split("@")[0]
            found.append(tuple(path[1:].rsplit("/", 1)) if path.startswith("/") else (group, path))
        elif isinstance(entry, dict):
            found += [(key.removeprefix("override ").strip("/"), value) for key, value in entry.items()
                      if isinstance(value, str) and key.removeprefix("override ").startswith("/")]  # fmt: skip
    return [f for f in found if len(f) == 2]


def _needed(group: str, name: str, conf: Optional[Path], seen: frozenset = frozenset()) -> Optional[tuple]:
    """(package, extra) that `group=name` needs and that is not installed, or None."""
    if (group, name) in NEEDS:
        package, modules, extra = NEEDS[group, name]
        return None if any(_installed(m) for m in modules) else (package, extra)
    bases = [b for b in _requires(group, name, conf) if b not in seen] if conf else []
    return next((n for b in bases if (n := _needed(*b, conf, seen | {(group, name)}))), None)


def missing(group: str, name: str, conf: Optional[Path] = None) -> Optional[str]:
    """The one-line error for `group=name` when a package it needs is not installed, else None;
    a preset in `conf` (the config directory) that extends a plugin's config needs what it needs."""
    needed = _needed(group, name, conf)
    return f"{group}={name} needs {needed[0]}: pip install -e '.[{needed[1]}]'" if needed else None


def choices(argv: list) -> list:
    """(group, name) of every `group=name`, `group=a,b` or `group=[a,b]` on a command line."""
    found = []
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and re.fullmatch(r"[\w/]+", key) and re.fullmatch(r"\[?[\w.-]+(,[\w.-]+)*\]?", value):
            found += [(key, name) for name in value.strip("[]").split(",")]
    return found


def missing_on_command_line(argv: list, conf: Path) -> Optional[str]:
    """The first missing-package line for the config choices of a command line, or None."""
    return next((line for group, name in choices(argv) if (line := missing(group, name, conf))), None)


def require_loggers(loggers) -> None:
    """Refuse (CloudMLError, one line) a composed `logger` group naming a tracker that is not installed."""
    from cloudml.errors import CloudMLError

    for name in loggers or {}:
        if line := missing("logger", name):
            raise CloudMLError(line)
