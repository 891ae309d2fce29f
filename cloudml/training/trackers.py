"""Experiment trackers (TensorBoard, MLflow, W&B: Lightning's own loggers, chosen in conf/logger/):
what each run hands them beyond the metrics the module logs. The run files stay the record that
analyze.py reads; a tracker is a view of them."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf


def mlflow_logger(experiment_name: str, tracking_uri: str, **kwargs):
    """Lightning's MLFlowLogger on `tracking_uri`, its experiment created first.

    MLflow 3 refuses its local file store unless asked (MLFLOW_ALLOW_FILE_STORE): cloudml's default
    store is one, as it needs no server or database and takes parallel jobs. Parallel jobs of a
    sweep may create the experiment at the same moment: the loser of that race uses the winner's.
    """
    if tracking_uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    if client.get_experiment_by_name(experiment_name) is None:
        try:
            client.create_experiment(experiment_name)
        except MlflowException:
            if client.get_experiment_by_name(experiment_name) is None:
                raise
    return MLFlowLogger(experiment_name=experiment_name, tracking_uri=tracking_uri, **kwargs)


def wandb_logger(offline: bool = True, silent: bool = True, **kwargs):
    """Lightning's WandbLogger, offline unless told otherwise; with `silent`, W&B prints nothing
    (its banners, sync hints, and a warning about the `anonymous` setting Lightning always passes).
    W&B fixes its console settings per process when it first sets up, before a run's own settings
    are read: it is set up here, with the run's mode."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    wandb.setup(wandb.Settings(silent=silent, mode="offline" if offline else "online"))
    return WandbLogger(offline=offline, **kwargs)


class RunParams(L.Callback):
    """Hands every logger the run's resolved config and job directory at the start of fit (TensorBoard:
    hparams.yaml; MLflow: params; W&B: config), and closes a W&B run at the end so that the next job
    of a sweep in the same process gets a run of its own (Lightning's WandbLogger would reuse it)."""

    def __init__(self, params: dict):
        self.params = params

    def on_fit_start(self, trainer: L.Trainer, module) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams(self.params)

    def _finish_wandb(self, trainer: L.Trainer, exit_code: int) -> None:
        if trainer.is_global_zero and any(type(lg).__name__ == "WandbLogger" for lg in trainer.loggers):
            import wandb

            if wandb.run is not None:
                wandb.run.finish(exit_code=exit_code)

    def teardown(self, trainer: L.Trainer, module, stage: str) -> None:
        self._finish_wandb(trainer, 0)

    def on_exception(self, trainer: L.Trainer, module, exception: BaseException) -> None:
        self._finish_wandb(trainer, 1)


def tracker_callbacks(cfg: DictConfig, out_dir: Path | None, loggers: list) -> list:
    """Callbacks that only trackers need: the run's parameters, and the lr of every step (the
    schedule steps per optimiser step; a tracker's lr curve shows it)."""
    if not loggers:
        return []
    params = {**OmegaConf.to_container(cfg, resolve=True), "job_dir": str(out_dir) if out_dir else None}
    return [RunParams(params), LearningRateMonitor(logging_interval="step")]
