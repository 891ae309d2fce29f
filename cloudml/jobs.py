"""Sweep bookkeeping: is this job directory new, finished, or to be resumed?

A job directory records what it computes (`identity.json`: seed, data, model, loss,
optimiser, scheduler, epochs). Re-running the same command skips finished jobs and resumes
interrupted ones; a directory that holds a *different* run is refused, never overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cloudml.errors import CloudMLError
from cloudml.io import write_json

FINISHED = ("completed", "diverged")
# Settings that change where or how fast a job runs, not what it computes.
VOLATILE = {"data": ("num_workers", "path_display")}


def identity(cfg: DictConfig) -> dict:
    """What a job computes, as plain JSON-able data."""
    keep = {k: cfg[k] for k in ("seed", "data", "model", "loss", "optimizer", "scheduler") if k in cfg}
    out = OmegaConf.to_container(OmegaConf.create(keep), resolve=True)
    for group, keys in VOLATILE.items():
        for key in keys:
            (out.get(group) or {}).pop(key, None)
    out["max_epochs"] = cfg.trainer.max_epochs
    return json.loads(json.dumps(out, sort_keys=True))


def _differences(old: dict, new: dict, prefix: str = "") -> list:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return diffs


def job_state(out_dir: Path, cfg: DictConfig) -> str:
    """`new`, `finished` or `resume`; records the identity of a new job."""
    ident, ident_path = identity(cfg), out_dir / "identity.json"
    if ident_path.exists():
        try:
            old = json.loads(ident_path.read_text())
        except ValueError:
            raise CloudMLError(f"{ident_path}: not valid JSON; delete the job directory to re-run it") from None
        diffs = _differences(old, ident)
        if diffs:
            raise CloudMLError(
                f"{out_dir}: holds a different run ({'; '.join(diffs[:3])}); choose another name= or delete it"
            )
        try:
            status = json.loads((out_dir / "summary.json").read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            status = None
        if status in FINISHED:
            return "finished"
        if (out_dir / "checkpoints" / "last.ckpt").exists():
            return "resume"
    write_json(ident_path, ident)
    return "new"


def write_failure(out_dir: Path, cfg: DictConfig, error: Exception, model_name: str | None = None) -> None:
    """Mark the job `failed` in summary.json, unless that file records another outcome already."""
    path = out_dir / "summary.json"
    if path.exists():
        try:
            if json.loads(path.read_text()).get("status") != "failed":
                return  # never overwrite the record of a finished, running or different run
        except (ValueError, AttributeError):
            return
    loss = cfg.get("loss") or {}
    write_json(path, {
        "status": "failed",
        "error": str(error),
        "variance_lambda": OmegaConf.to_container(OmegaConf.create({"v": loss.get("variance_lambda")}))["v"],
        "seed": cfg.get("seed"),
        "model": model_name,
        "epochs_completed": 0,
        "epochs_planned": cfg.trainer.max_epochs if "trainer" in cfg else None,
        "final": {"val_r2": None, "val_variance_ratio": None, "val_mae": None, "val_rmse": None},
        "avg_base_loss_last5": None,
        "avg_var_loss_last5": None,
        "stability": None,
        "stability_reason": "the run failed before training",
        "diverged_epoch": None,
        "collapsed": None,
        "wall_time_s": 0.0,
    })  # fmt: skip
