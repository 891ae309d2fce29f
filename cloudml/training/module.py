"""The LightningModule: a model, the variance-preserving loss, whole-set metrics, lr per step."""

from __future__ import annotations

from typing import Callable, Optional

import lightning as L
import torch
from torchmetrics import MeanMetric

from cloudml.errors import CloudMLError
from cloudml.training.augment import Augment
from cloudml.training.loss import VariancePreservingLoss
from cloudml.training.metrics import validation_metrics

TRAIN_PARTS = ("loss", "base_loss", "var_loss")


class CloudBaseRegressor(L.LightningModule):
    """Trains `model` on normalised targets; reports metrics in km over the whole validation set.

    Everything a run records goes through Lightning's own channel: the epoch metrics are
    logged with `self.log` (Metric objects, which Lightning computes, reduces across processes
    and resets), and `validation_step` returns each batch's predictions for the callbacks.
    The lr scheduler steps every optimiser step by default (the program stepped a warm-up per
    epoch and never left ~1e-5; `scheduler_interval="epoch"` reproduces that on purpose). NaN guard: a non-finite training loss skips its step (no backward, the
    weights stay finite); after more than `max_nonfinite_steps` such steps the run stops and
    logs `diverged` = 1, so a sweep goes on.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: VariancePreservingLoss,
        optimizer: Callable,
        scheduler: Optional[Callable] = None,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        max_nonfinite_steps: int = 0,
        scheduler_interval: str = "step",
        augment: Optional[Augment] = None,
    ):
        super().__init__()
        self.model, self.loss = model, loss
        if scheduler_interval not in ("step", "epoch"):
            raise CloudMLError(f"scheduler.interval={scheduler_interval!r}: expected step or epoch")
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.register_buffer("target_mean", torch.tensor(float(target_mean), dtype=torch.float64))
        self.register_buffer("target_std", torch.tensor(float(target_std), dtype=torch.float64))
        self.train_parts = torch.nn.ModuleDict({k: MeanMetric() for k in TRAIN_PARTS})
        self.val_base = MeanMetric()
        self.val_metrics = validation_metrics(prefix="val_")
        self.max_nonfinite_steps, self.nonfinite_steps = int(max_nonfinite_steps), 0
        self.augment = augment

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch["images"], batch["scalars"])

    def to_km(self, y: torch.Tensor) -> torch.Tensor:
        return y.double() * self.target_std + self.target_mean

    # -- training ---------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int):
        if self.augment is not None:
            batch = self.augment(batch, self.current_epoch, batch_idx, self.global_rank)
        parts = self.loss(self(batch).float(), batch["target"])  # loss in fp32 under mixed precision
        finite = bool(torch.isfinite(parts.total))
        if finite:
            n = len(batch["target"])
            for key, value in zip(TRAIN_PARTS, parts):
                self.train_parts[key].update(value.detach(), n)
        # Logged every step, so an epoch without a finite step reads NaN rather than the last epoch's value.
        self.log_dict({f"train_{k}": m for k, m in self.train_parts.items()}, on_step=False, on_epoch=True)
        if finite:
            return {"loss": parts.total, "base_loss": parts.base.detach()}
        self.nonfinite_steps += 1
        if self.nonfinite_steps > self.max_nonfinite_steps:
            self.log("diverged", 1.0, on_step=False, on_epoch=True, reduce_fx="max")
            self.trainer.should_stop = True
        return None  # no backward, no optimiser step: the weights stay finite

    # -- validation: everything over the whole set, in km ---------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        pred = self(batch).float()
        target = batch["target"]
        self.val_base.update(torch.nn.functional.huber_loss(pred, target, delta=self.loss.huber_delta), len(target))
        pred_km, target_km = self.to_km(pred), self.to_km(target)
        self.val_metrics.update(pred_km, target_km)
        return {"index": batch["index"], "flight": batch.get("flight"), "pred_km": pred_km, "target_km": target_km}

    def on_validation_epoch_end(self) -> None:
        # compute() reduces over all processes and is cached until Lightning resets the metrics.
        var_loss = (1.0 - self.val_metrics["variance_ratio"].compute()) ** 2  # whole set, not per batch
        self.log_dict(self.val_metrics)
        self.log("val_base_loss", self.val_base)
        self.log("val_var_loss", var_loss)
        self.log("val_loss", self.val_base.compute() + self.loss.variance_lambda * var_loss)

    # -- optimisation -------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        per_step = self.scheduler_interval == "step"
        steps = int(self.trainer.estimated_stepping_batches) if per_step else int(self.trainer.max_epochs)
        scheduler = self.scheduler_factory(optimizer, total_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}
