"""The frame around one job: one live owner (the job lock), SIGINT and SIGTERM as a recorded stop,
and every early end of the job written into its summary by the owner before it lets the lock go."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import lightning as L
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from cloudml import rundir
from cloudml.errors import CloudMLError
from cloudml.rundir import RunMeta, Verdicts
from cloudml.rundir.lock import LIFETIME_S, JobLock, check_owned, claimed
from cloudml.training import stops
from cloudml.training.resume import JobDirRefused, restore_record


@contextmanager
def guarded(cfg: DictConfig, out_dir: Path, model_name: Optional[str] = None) -> Iterator[bool]:
    """Own the job for the block: yields False, or True when a live process holds it (skip the job).
    Only global rank 0 claims the job; the other DDP ranks of a run share its claim."""
    with stops.on_signals():
        if rank_zero_only.rank != 0:
            yield False
            return
        lifetime = float((cfg.get("job_lock") or {}).get("lifetime_s") or LIFETIME_S)
        with claimed(out_dir, lifetime) as lock:
            if lock.held_by is not None:
                print(f"[cloudml] {out_dir}: held by another process ({lock.held_by}), skipped", flush=True)
                restore_record(out_dir)  # this launch's Hydra rewrote the record of the owner's
                yield True
                return
            if lock.taken_over is not None:
                print(f"[cloudml] {out_dir}: took over the lock of {lock.taken_over[0]} ({lock.taken_over[1]})", flush=True)
            try:
                yield False
            except BaseException as exc:
                stops.hold()  # e.g. the SIGTERM that follows submitit's requeue must not cut the record short
                _record(lock, cfg, exc, model_name)
                raise


def _record(lock: JobLock, cfg: DictConfig, exc: BaseException, model_name: Optional[str]) -> None:
    """write_stop, by the owner only; a summary that cannot be written is said in one line."""
    if not lock.owned():
        return  # a process that lost the job writes nothing into it
    try:
        write_stop(lock.job_dir, cfg, exc, model_name)
    except (CloudMLError, OSError) as error:  # e.g. the disk is still full; train.py reports the stop itself
        print(f"[cloudml] {lock.job_dir}: summary.json not updated ({error})", file=sys.stderr, flush=True)


def _plain(cfg: DictConfig) -> dict:
    """The config as plain data, resolved where it can be (the failure may be in the config itself)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 -- any interpolation error: keep the unresolved values
        return OmegaConf.to_container(cfg, resolve=False)


def _fresh_summary(status: str, cfg: DictConfig, model_name: Optional[str]) -> dict:
    """The summary of a job that stopped before it completed an epoch, from its config."""
    plain = _plain(cfg)
    try:
        verdicts = Verdicts.from_config(plain.get("verdicts"))
    except CloudMLError:  # the failure may be this very setting
        verdicts = Verdicts()
    return rundir.build_summary(status, RunMeta.from_config(plain, model_name), verdicts)


def write_stop(out_dir: Path, cfg: DictConfig, error: BaseException, model_name: Optional[str] = None) -> None:
    """Mark the job `failed` (with the one-line reason) or `interrupted` (with the signal and epoch) in
    summary.json, keeping the numbers it recorded so far. The record of a finished run, of a different
    run (JobDirRefused) or one that cannot be read is left as it is."""
    if isinstance(error, JobDirRefused):
        return
    status, interrupted_by, text = stops.outcome(error)
    summary = None
    if (Path(out_dir) / rundir.SUMMARY).exists():
        try:
            summary = rundir.read_summary(out_dir)
        except rundir.RunFileError:
            return
        if summary["status"] in rundir.FINISHED:
            return
    if not (summary or {}).get("epochs_completed"):
        summary = _fresh_summary(status, cfg, model_name)
    rundir.write_summary(out_dir, rundir.stopped(summary, status, error=text, interrupted_by=interrupted_by))


class OwnerCheck(L.Callback):
    """Before the run files are written (first among the callbacks), that this process still owns the job."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)

    def on_train_epoch_end(self, trainer: L.Trainer, module) -> None:
        check_owned(self.out_dir)

    def on_fit_end(self, trainer: L.Trainer, module) -> None:
        check_owned(self.out_dir)
