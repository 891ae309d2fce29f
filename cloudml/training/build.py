"""The build step: a composed config -> (datamodule, module, trainer), as train.py, the tests and
the benchmarks all use it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple, Optional

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from cloudml import rundir
from cloudml.errors import CloudMLError
from cloudml.extras import require_loggers
from cloudml.models.build import build_model
from cloudml.rundir import RunMeta, Verdicts
from cloudml.training.callbacks import LastCheckpoint, ProcessSettings, RunRecorder, StepSpikes
from cloudml.training.checkpoint_io import AtomicCheckpointIO
from cloudml.training.console import EpochLines, quiet_lightning
from cloudml.training.guard import OwnerCheck
from cloudml.training.module import CloudBaseRegressor
from cloudml.training.trackers import tracker_callbacks

# Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates: library noise, not ours.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


class Experiment(NamedTuple):
    datamodule: L.LightningDataModule
    module: CloudBaseRegressor
    trainer: L.Trainer


def instantiate_checked(node: DictConfig, **kwargs):
    """`instantiate`, letting a user-facing CloudMLError through unwrapped (one line, no traceback)."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, CloudMLError):
            raise exc.__cause__ from None
        raise


def _each(group: Optional[DictConfig]) -> list:
    """Every object of a config group whose entries are `_target_` nodes (None and {} give [])."""
    return [instantiate_checked(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def build(cfg: DictConfig, out_dir: Optional[Path] = None, model_name: Optional[str] = None) -> Experiment:
    """Objects of one run; with `out_dir`, the run writes its files there (data files at once).

    The loss is built first, so a bad loss setting fails before the data is read (minutes on a
    large file).
    """
    loss = instantiate_checked(cfg.loss)
    data = instantiate_checked(cfg.data)
    data.setup("fit")
    if loss.estimator == "halves" and data.batch_size < 4:
        raise CloudMLError(f"data.batch_size={data.batch_size}: loss.estimator=halves needs batches of at least 4 samples")
    model = build_model(cfg.model, data.frame_shape, data.n_scalars)
    schedule = cfg.get("scheduler") or {}
    augment = instantiate_checked(cfg.augment) if cfg.get("augment") else None
    if augment is not None:
        augment.set_normalization(data.stats["images"]["mean"], data.stats["images"]["std"])
    module = CloudBaseRegressor(model, loss, instantiate_checked(cfg.optimizer),
                                instantiate_checked(schedule["schedule"]) if schedule else None,
                                data.stats["target"]["mean"], data.stats["target"]["std"],
                                max_nonfinite_steps=cfg.nan_guard.max_skipped_steps,
                                scheduler_interval=schedule.get("interval", "step"), augment=augment)  # fmt: skip
    verdicts = Verdicts.from_config(cfg.get("verdicts"))
    callbacks = [ProcessSettings(), StepSpikes(verdicts.spike_window_steps), EpochLines(), *_each(cfg.get("callbacks"))]
    checkpointing = {"enable_checkpointing": False}
    if out_dir is not None:
        out_dir = Path(out_dir)
        rundir.write_data_files(out_dir, data.describe(), data.stats, data.split.train, data.split.val)
        meta = RunMeta.from_config(cfg, model_name)
        callbacks = [OwnerCheck(out_dir), *callbacks, RunRecorder(out_dir, meta, verdicts),
                     LastCheckpoint(out_dir / rundir.CHECKPOINT)]  # fmt: skip
        checkpointing = {}  # LastCheckpoint is the run's checkpoint; without one Lightning would add its own
    require_loggers(cfg.get("logger"))  # one line naming the extra, not Lightning's ModuleNotFoundError
    loggers = _each(cfg.get("logger"))
    quiet_lightning()  # before the Trainer announces its devices
    trainer = instantiate_checked(cfg.trainer, callbacks=callbacks + tracker_callbacks(cfg, out_dir, loggers),
                                  logger=loggers or False, plugins=[AtomicCheckpointIO()], **checkpointing)  # fmt: skip
    return Experiment(data, module, trainer)
