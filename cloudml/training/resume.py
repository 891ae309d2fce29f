"""Resuming: is this job directory new, finished, or to be resumed? Is its checkpoint safe?

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
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from cloudml import rundir
from cloudml.atomic import write_bytes, write_json
from cloudml.errors import CloudMLError

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
                write_bytes(dst / name, data)


def restore_record(out_dir: Path) -> None:
    """Put back the Hydra record of the launch that started the run (this launch rewrote it)."""
    _copy_record(out_dir / ".hydra" / "kept", out_dir / ".hydra")


def job_state(out_dir: Path, cfg: DictConfig) -> str:
    """`new`, `finished` or `resume`; records the identity of a new job."""
    ident, ident_path = identity(cfg), out_dir / rundir.IDENTITY
    record, kept = out_dir / ".hydra", out_dir / ".hydra" / "kept"
    if ident_path.exists():
        try:
            old = json.loads(ident_path.read_text())
        except ValueError:
            _copy_record(kept, record)
            raise JobDirRefused(f"{ident_path}: not valid JSON; delete the job directory to re-run it") from None
        status = _status(out_dir)
        has_checkpoint = (out_dir / rundir.CHECKPOINT).exists()
        diffs = _differences(old, ident)
        if diffs and not (status == "failed" and not has_checkpoint):  # a run that never trained is replaced
            _copy_record(kept, record)
            raise JobDirRefused(
                f"{out_dir}: holds a different run ({'; '.join(diffs[:3])}); choose another name= or delete it"
            )
        if not diffs and status in rundir.FINISHED:
            _copy_record(kept, record)
            return "finished"
        if not diffs and has_checkpoint:
            _copy_record(kept, record)
            return "resume"
    write_json(ident_path, ident)
    _copy_record(record, kept)
    return "new"


def _status(out_dir: Path):
    """The status summary.json records, or None when there is none that can be read."""
    try:
        return json.loads((out_dir / rundir.SUMMARY).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def checked_checkpoint(path: Path) -> Path:
    """`path` if it loads as a checkpoint with `weights_only=True` (no arbitrary pickles)."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... here
        text = str(exc).strip()
        if "WeightsUnpickler error:" in text:  # not torch's advice to load it unsafely: what it refused
            text = "refused by weights_only loading: " + text.split("WeightsUnpickler error:", 1)[1].strip()
        reason = text.splitlines()[0].split(". ")[0][:160] if text else type(exc).__name__
        raise CloudMLError(
            f"{path}: not a loadable checkpoint ({reason}); delete it to restart this job from scratch"
        ) from None
    if not isinstance(content, dict) or "state_dict" not in content:
        raise CloudMLError(f"{path}: not a Lightning checkpoint (no 'state_dict'); delete it to restart this job")
    return path
