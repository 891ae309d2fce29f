"""Lightning callbacks that write a run's files (atomically, from rank 0 only) and apply the
process-wide settings every training process needs.

They read only what Lightning hands every callback: `trainer.callback_metrics` (the epoch
metrics the module logs), the optimiser's learning rate, and the outputs of `validation_step`.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import deque
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from cloudml import rundir
from cloudml.rundir import RunMeta, Verdicts

LOGGED_COLUMNS = [c for c in rundir.HISTORY_COLUMNS if c not in ("epoch", "lr", "epoch_seconds")]


def _diverged(trainer: L.Trainer) -> bool:
    """The module logs `diverged` = 1 in the epoch its NaN guard stopped the run."""
    return float(trainer.callback_metrics.get("diverged", 0.0)) > 0


class RunRecorder(L.Callback):
    """history.csv and a `running` summary.json after every epoch; predictions.npz (the last
    validation pass, from every process, in file order) and the final summary at the end."""

    def __init__(self, out_dir: str | Path, meta: RunMeta, verdicts: Verdicts):
        self.out_dir, self.meta, self.verdicts = Path(out_dir), meta, verdicts
        self.history: list = []
        self.diverged_epoch = None
        self.previous_wall = 0.0
        self.parameters = None
        self._val_rows: list = []

    def _summary(self, status: str) -> dict:
        return rundir.build_summary(status, self.meta, self.verdicts, self.history, diverged_epoch=self.diverged_epoch,
                                    wall_time_s=self.previous_wall + time.time() - self.started,
                                    parameters=self.parameters)  # fmt: skip

    def on_train_start(self, trainer: L.Trainer, module) -> None:  # after a checkpoint is restored
        self.started = time.time()
        self.parameters = sum(p.numel() for p in module.parameters() if p.requires_grad)
        resumed_epoch = trainer.current_epoch  # > 0 when resuming from last.ckpt
        self.history = [r for r in rundir.read_history(self.out_dir) if r["epoch"] < resumed_epoch]
        if resumed_epoch and (self.out_dir / rundir.SUMMARY).exists():
            try:
                self.previous_wall = float(rundir.read_summary(self.out_dir).get("wall_time_s") or 0.0)
            except rundir.RunFileError:
                self.previous_wall = 0.0
        if trainer.is_global_zero:
            rundir.write_summary(self.out_dir, self._summary("running"))

    def on_train_epoch_start(self, trainer: L.Trainer, module) -> None:
        self.epoch_started = time.perf_counter()

    def on_validation_epoch_start(self, trainer: L.Trainer, module) -> None:
        self._val_rows = []

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        flight = outputs["flight"] if outputs.get("flight") is not None else torch.full_like(outputs["index"], -1)
        columns = (outputs["index"], outputs["pred_km"], outputs["target_km"], flight)
        self._val_rows.append(torch.stack([c.detach().double() for c in columns], dim=1))

    def on_train_epoch_end(self, trainer: L.Trainer, module) -> None:
        metrics = trainer.callback_metrics
        if _diverged(trainer) and self.diverged_epoch is None:
            self.diverged_epoch = trainer.current_epoch
        row = {"epoch": trainer.current_epoch, "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        row.update({k: float(metrics[k]) if k in metrics else math.nan for k in LOGGED_COLUMNS})
        row["epoch_seconds"] = time.perf_counter() - self.epoch_started  # training and validation
        if self.diverged_epoch is not None:
            row["train_loss"] = math.nan  # the history itself shows where the run diverged
        self.history.append(row)
        if trainer.is_global_zero:
            rundir.write_history(self.out_dir, self.history)
            rundir.write_summary(self.out_dir, self._summary("running"))

    def _validation_rows(self, trainer: L.Trainer) -> np.ndarray:
        """(n_val, 4) rows of (file index, pred km, target km, flight) from all processes, in file order."""
        local = torch.cat(self._val_rows) if self._val_rows else torch.zeros(0, 4, dtype=torch.float64)
        if trainer.world_size > 1:  # ranks hold different counts: pad to equal size, gather, drop pads
            device = trainer.strategy.root_device
            sizes = trainer.strategy.all_gather(torch.tensor(len(local), device=device))
            pad = local.new_full((int(sizes.max()) - len(local), 4), -1.0)
            gathered = trainer.strategy.all_gather(torch.cat([local, pad]).to(device)).reshape(-1, 4).cpu()
            local = gathered[gathered[:, 0] >= 0]
        return local[torch.argsort(local[:, 0])].cpu().numpy()

    def on_fit_end(self, trainer: L.Trainer, module) -> None:
        rows = self._validation_rows(trainer)  # collective under DDP: every rank calls it
        if not trainer.is_global_zero:
            return
        flight = rows[:, 3] if len(rows) and (rows[:, 3] >= 0).all() else None
        rundir.write_predictions(self.out_dir, rows[:, 1], rows[:, 2], rows[:, 0].astype(np.int64), flight)
        rundir.write_summary(self.out_dir, self._summary("diverged" if self.diverged_epoch is not None else "completed"))


class StepSpikes(L.Callback):
    """Logs per epoch the largest step loss (`train_loss_max`) and total gradient norm before
    clipping (`grad_norm_max`), and the largest ratio of a step's base loss and gradient norm to
    their median over the previous `window` steps (`base_loss_spike`, `grad_norm_spike`; judged
    only once `min_steps` steps are behind), which the stability rule reads."""

    def __init__(self, window: int = 50, min_steps: int = 10):
        self.window, self.min_steps = window, min_steps
        self.recent = {"base_loss": deque(maxlen=window), "grad_norm": deque(maxlen=window)}
        self.grad_norm = math.nan

    def on_before_optimizer_step(self, trainer: L.Trainer, module, optimizer) -> None:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        self.grad_norm = float(torch.nn.utils.get_total_norm(grads)) if grads else math.nan

    def _ratio(self, key: str, value: float) -> float:
        recent = self.recent[key]
        ratio = value / float(np.median(recent)) if len(recent) >= self.min_steps else math.nan
        recent.append(value)
        return ratio

    def on_train_batch_end(self, trainer: L.Trainer, module, outputs, batch, batch_idx) -> None:
        if not isinstance(outputs, dict):
            return  # a step the NaN guard skipped
        loss, base = float(outputs["loss"]), float(outputs["base_loss"])
        logged = {"train_loss_max": loss, "grad_norm_max": self.grad_norm,
                  "base_loss_spike": self._ratio("base_loss", base), "grad_norm_spike": self._ratio("grad_norm", self.grad_norm)}  # fmt: skip
        for key, value in logged.items():
            if math.isfinite(value):
                module.log(key, value, on_step=False, on_epoch=True, reduce_fx="max", sync_dist=True)


class LastCheckpoint(Checkpoint):
    """checkpoints/last.ckpt after every epoch, written to a temp file and renamed into place,
    so a kill -9 mid-write leaves the previous checkpoint intact."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: L.Trainer, module) -> None:
        if _diverged(trainer):
            return  # keep the last finite state
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp, weights_only=False)  # collective: every rank calls it, rank 0 writes
        if trainer.is_global_zero:
            tmp.replace(self.path)


class ProcessSettings(L.Callback):
    """Process-wide settings in every process that trains (ddp_spawn ranks start as fresh interpreters)."""

    def setup(self, trainer: L.Trainer, module, stage: str) -> None:
        # Deterministic mode also fills every new tensor with NaN, a debugging aid for kernels that
        # read uninitialised memory (~1.5 % of a step here); the algorithms stay deterministic without it.
        torch.utils.deterministic.fill_uninitialized_memory = False

    def teardown(self, trainer: L.Trainer, module, stage: str) -> None:
        # A ddp_spawn rank exits through os._exit, skipping the atexit hook that would close its process
        # group; gloo's threads then sometimes abort the exit ("terminate called").
        spawned_rank = multiprocessing.parent_process() is not None
        if stage == "fit" and spawned_rank and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
