"""What a training job prints: a start banner (run.py), a progress bar when interactive or one line
per epoch when not (CI, SLURM logs), and one end line read from summary.json. Lightning's own
INFO lines ("GPU available", "Loading `train_dataloader`...") go to the job's log file only, and
its advertisements ("💡 Tip: ... litlogger") nowhere."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import lightning as L

from cloudml import rundir

PREFIX = "[cloudml]"
# Loggers that Lightning gives a console handler of its own when it is imported.
LIGHTNING_CONSOLES = ("lightning", "lightning.pytorch", "lightning.fabric")
# rank_zero_info writes through these (whichever of pytorch/fabric was imported last).
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def _not_an_advertisement(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip:")


def quiet_lightning() -> None:
    """Lightning's console handlers show warnings and errors only; its tips are dropped at the source.
    The INFO lines still reach the root logger (Hydra writes them to <job dir>/train.log)."""
    for name in LIGHTNING_CONSOLES:
        for handler in logging.getLogger(name).handlers:
            if type(handler) is logging.StreamHandler:
                handler.setLevel(logging.WARNING)
    for name in RANK_ZERO_LOGGERS:
        logging.getLogger(name).addFilter(_not_an_advertisement)  # adding the same filter twice is a no-op


def _number(x, spec: str = ".3f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else "—"


class EpochLines(L.Callback):
    """One line per epoch (losses, R², variance ratio, time) when the run shows no progress bar."""

    def on_train_start(self, trainer: L.Trainer, module) -> None:
        self.active = trainer.progress_bar_callback is None and trainer.is_global_zero

    def on_train_epoch_start(self, trainer: L.Trainer, module) -> None:
        self.started = time.time()

    def on_train_epoch_end(self, trainer: L.Trainer, module) -> None:  # after validation: its metrics are in
        if not getattr(self, "active", False):
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        print(f"{PREFIX} epoch {trainer.current_epoch + 1}/{trainer.max_epochs} | train_loss {_number(m.get('train_loss'), '.4f')} | "
              f"val_loss {_number(m.get('val_loss'), '.4f')} | R² {_number(m.get('val_r2'))} | variance ratio "
              f"{_number(m.get('val_variance_ratio'))} | {time.time() - self.started:.1f} s", flush=True)  # fmt: skip


def end_line(out_dir: Path) -> str:
    """The job's one-line outcome from its summary.json: status, epochs, R², variance ratio, wall time."""
    try:
        summary = rundir.read_summary(out_dir)
    except (rundir.RunFileError, OSError) as exc:
        return f"{PREFIX} {out_dir}: no readable summary.json ({exc})"
    final, status = summary.get("final") or {}, summary["status"]
    if summary.get("diverged_epoch") is not None:
        status += f" at epoch {summary['diverged_epoch'] + 1}"
    return (f"{PREFIX} {out_dir}: {status} | {summary.get('epochs_completed', 0)}/{summary.get('epochs_planned')} epochs | "
            f"R² {_number(final.get('val_r2'))} | variance ratio {_number(final.get('val_variance_ratio'))} | "
            f"{_number(summary.get('wall_time_s'), '.1f')} s")  # fmt: skip
