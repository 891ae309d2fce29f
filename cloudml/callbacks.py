"""Lightning callbacks that write a run's files (SPEC §3), atomically, from rank 0 only."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from cloudml.atomic import write_json, write_npz, write_text
from cloudml.summary import HISTORY_COLUMNS, summarize


def read_history(path: Path) -> list:
    """Rows of history.csv as dicts of floats (epoch as int)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


class RunRecorder(L.Callback):
    """history.csv after every epoch; predictions.npz and summary.json at the end."""

    def __init__(self, out_dir: str, variance_lambda: float, seed: int, model_name: str, epochs_planned: int,
                 stability_window: int = 5, spike_factor: float = 1.5, extra: dict | None = None):  # fmt: skip
        self.out_dir = Path(out_dir)
        self.meta = dict(variance_lambda=variance_lambda, seed=seed, model=model_name, epochs_planned=epochs_planned,
                         window=stability_window, spike_factor=spike_factor, **(extra or {}))  # fmt: skip
        self.history: list = []
        self.previous_wall = 0.0

    def _summary(self, status: str, module) -> dict:
        return summarize(self.history, status=status, diverged_epoch=module.diverged_epoch,
                         wall_time_s=self.previous_wall + time.time() - self.started, **self.meta)  # fmt: skip

    def on_train_start(self, trainer: L.Trainer, module) -> None:  # after a checkpoint is restored
        self.started = time.time()
        resumed_epoch = trainer.current_epoch  # > 0 when resuming from last.ckpt
        self.history = [r for r in read_history(self.out_dir / "history.csv") if r["epoch"] < resumed_epoch]
        summary = self.out_dir / "summary.json"
        if resumed_epoch and summary.exists():
            try:
                self.previous_wall = float(json.loads(summary.read_text()).get("wall_time_s") or 0.0)
            except (ValueError, AttributeError):
                self.previous_wall = 0.0
        if trainer.is_global_zero:
            write_json(summary, self._summary("running", module))

    def on_train_epoch_end(self, trainer: L.Trainer, module) -> None:
        row = {"epoch": trainer.current_epoch, "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        row.update(module.train_epoch_results())
        if module.diverged_epoch is not None:
            row["train_loss"] = math.nan  # the history itself shows where the run diverged
        row.update({k: module.val_results.get(k, math.nan) for k in HISTORY_COLUMNS if k.startswith("val_")})
        self.history.append(row)
        if trainer.is_global_zero:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.history)
            write_text(self.out_dir / "history.csv", buffer.getvalue())
            write_json(self.out_dir / "summary.json", self._summary("running", module))

    def on_fit_end(self, trainer: L.Trainer, module) -> None:
        rows = module.validation_predictions().cpu().numpy()  # collective under DDP: every rank calls it
        if not trainer.is_global_zero:
            return
        write_npz(self.out_dir / "predictions.npz", pred=rows[:, 1], target=rows[:, 2],
                  index=rows[:, 0].astype("int64"), **self._flights(trainer, rows[:, 0]))  # fmt: skip
        status = "diverged" if module.diverged_epoch is not None else "completed"
        write_json(self.out_dir / "summary.json", self._summary(status, module))

    @staticmethod
    def _flights(trainer: L.Trainer, index) -> dict:
        meta = getattr(trainer.datamodule, "meta", None)
        if meta is None or meta.flight is None:
            return {}
        return {"flight": meta.flight[index.astype("int64")].astype("int32")}


class LastCheckpoint(Checkpoint):
    """checkpoints/last.ckpt after every epoch, written to a temp file and renamed into place,
    so a kill -9 mid-write leaves the previous checkpoint intact."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: L.Trainer, module) -> None:
        if module.diverged_epoch is not None:
            return  # keep the last finite state
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp, weights_only=False)  # collective: every rank calls it, rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
