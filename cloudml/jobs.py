"""Sweep bookkeeping: is this job directory new, finished, or to be resumed?

A job directory records what it computes (`identity.json`: seed, data, model, loss,
optimiser, scheduler, epochs). Re-running the same command skips finished jobs and resumes
interrupted ones; a directory that holds a *different* run is refused, never overwritten
(only a run that failed before training, e.g. on a bad data file, may be replaced).

Hydra rewrites `.hydra/*.yaml` on every launch, before the job can look at its directory; a
copy of the record of the launch that started the run (`.hydra/kept/`) is put back when a
launch resumes, skips or is refused, so the record stays that of the run the directory holds.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cloudml.errors import CloudMLError
from cloudml.atomic import atomic_write, write_json

FINISHED = ("completed", "diverged")
HYDRA_RECORD = ("config.yaml", "hydra.yaml", "overrides.yaml")
# Settings that change where or how fast a job runs, not what it computes.
VOLATILE = {"data": ("num_workers",)}


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


class JobDirRefused(CloudMLError):
    """The job directory holds another run (or one that cannot be identified): left untouched."""


def _copy_record(src: Path, dst: Path) -> None:
    for name in HYDRA_RECORD:
        if (src / name).is_file():
            data = (src / name).read_bytes()
            if not (dst / name).is_file() or (dst / name).read_bytes() != data:
                atomic_write(dst / name, lambda tmp: tmp.write_bytes(data))


def job_state(out_dir: Path, cfg: DictConfig) -> str:
    """`new`, `finished` or `resume`; records the identity of a new job."""
    ident, ident_path = identity(cfg), out_dir / "identity.json"
    record, kept = out_dir / ".hydra", out_dir / ".hydra" / "kept"
    if ident_path.exists():
        try:
            old = json.loads(ident_path.read_text())
        except ValueError:
            _copy_record(kept, record)
            raise JobDirRefused(f"{ident_path}: not valid JSON; delete the job directory to re-run it") from None
        try:
            status = json.loads((out_dir / "summary.json").read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            status = None
        has_checkpoint = (out_dir / "checkpoints" / "last.ckpt").exists()
        diffs = _differences(old, ident)
        if diffs and not (status == "failed" and not has_checkpoint):  # a run that never trained is replaced
            _copy_record(kept, record)
            raise JobDirRefused(
                f"{out_dir}: holds a different run ({'; '.join(diffs[:3])}); choose another name= or delete it"
            )
        if not diffs and status in FINISHED:
            _copy_record(kept, record)
            return "finished"
        if not diffs and has_checkpoint:
            _copy_record(kept, record)
            return "resume"
    write_json(ident_path, ident)
    _copy_record(record, kept)
    return "new"


def write_failure(out_dir: Path, cfg: DictConfig, error: Exception, model_name: str | None = None) -> None:
    """Mark the job `failed` in summary.json, unless that file records another outcome already."""
    if isinstance(error, JobDirRefused):
        return
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
