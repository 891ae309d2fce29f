"""The LightningModule: a model, the variance-preserving loss, whole-set metrics, lr per step."""

from __future__ import annotations

import math
import multiprocessing
from typing import Callable, Optional

import lightning as L
import torch
from torchmetrics import MeanMetric

from cloudml.loss import VariancePreservingLoss
from cloudml.metrics import validation_metrics


class CloudBaseRegressor(L.LightningModule):
    """Trains `model` on normalised targets; reports metrics in km over the whole validation set.

    The lr scheduler steps every optimiser step (the program stepped a warm-up per epoch and
    never left ~1e-5). NaN guard: a non-finite training loss skips its step (no backward, the
    weights stay finite); after more than `max_nonfinite_steps` such steps in a run, the run
    stops as diverged (`diverged_epoch` records where), so a sweep goes on.
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
    ):
        super().__init__()
        self.model, self.loss = model, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.register_buffer("target_mean", torch.tensor(float(target_mean), dtype=torch.float64))
        self.register_buffer("target_std", torch.tensor(float(target_std), dtype=torch.float64))
        self.train_parts = torch.nn.ModuleDict({k: MeanMetric() for k in ("loss", "base_loss", "var_loss")})
        self.val_base = MeanMetric()
        self.val_metrics = validation_metrics()
        self.val_results: dict = {}
        self.diverged_epoch: Optional[int] = None
        self.max_nonfinite_steps, self.nonfinite_steps = int(max_nonfinite_steps), 0
        self._val_pred: list = []

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch["images"], batch["scalars"])

    def to_km(self, y: torch.Tensor) -> torch.Tensor:
        return y.double() * self.target_std + self.target_mean

    # -- training ---------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int):
        parts = self.loss(self(batch).float(), batch["target"])  # loss in fp32 under mixed precision
        if not torch.isfinite(parts.total):
            self.nonfinite_steps += 1
            if self.nonfinite_steps > self.max_nonfinite_steps:
                self.diverged_epoch = self.current_epoch
                self.trainer.should_stop = True
            return None  # no backward, no optimiser step: the weights stay finite
        n = len(batch["target"])
        for key, value in zip(("loss", "base_loss", "var_loss"), parts):
            self.train_parts[key].update(value.detach(), n)
        return parts.total

    def on_train_epoch_start(self) -> None:
        for metric in self.train_parts.values():
            metric.reset()

    def train_epoch_results(self) -> dict:
        """Mean training losses of this epoch (sample-weighted, reduced across processes)."""
        out = {}
        for key, metric in self.train_parts.items():
            out[f"train_{key}"] = float(metric.compute()) if metric.update_count else math.nan
        return out

    # -- validation: everything over the whole set, in km ---------------------------------
    def on_validation_epoch_start(self) -> None:
        self.val_base.reset()
        self.val_metrics.reset()
        self._val_pred = []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        pred = self(batch).float()
        target = batch["target"]
        n = len(target)
        self.val_base.update(torch.nn.functional.huber_loss(pred, target, delta=self.loss.huber_delta), n)
        pred_km, target_km = self.to_km(pred), self.to_km(target)
        self.val_metrics.update(pred_km, target_km)
        self._val_pred.append(torch.stack([batch["index"].double(), pred_km, target_km], dim=1))

    def on_validation_epoch_end(self) -> None:
        metrics = {k: float(v) for k, v in self.val_metrics.compute().items()}
        base = float(self.val_base.compute())
        var_loss = (1.0 - metrics["variance_ratio"]) ** 2  # over the whole set, not per batch
        self.val_results = {
            "val_loss": base + self.loss.variance_lambda * var_loss,
            "val_base_loss": base,
            "val_var_loss": var_loss,
            **{f"val_{k}": v for k, v in metrics.items()},
        }
        # Already reduced over all processes by torchmetrics; logged for the progress bar.
        self.log_dict({k: self.val_results[k] for k in ("val_r2", "val_variance_ratio")}, prog_bar=True)

    def validation_predictions(self) -> torch.Tensor:
        """(n_val, 3) rows of (file index, pred km, target km) from all processes, in file order."""
        local = torch.cat(self._val_pred) if self._val_pred else torch.zeros(0, 3, dtype=torch.float64)
        if self.trainer.world_size > 1:  # ranks hold different counts: pad to equal size, gather, drop pads
            sizes = self.all_gather(torch.tensor(len(local), device=self.device))
            pad = local.new_full((int(sizes.max()) - len(local), 3), -1.0)
            gathered = self.all_gather(torch.cat([local.to(self.device), pad])).reshape(-1, 3).cpu()
            local = gathered[gathered[:, 0] >= 0]
        return local[torch.argsort(local[:, 0])]

    def setup(self, stage: str) -> None:
        # Deterministic mode (trainer.deterministic) also fills every new tensor with NaN, a
        # debugging aid for kernels that read uninitialised memory: ~1.5 % of a training step
        # here. Off; the algorithms stay deterministic (torch.utils.deterministic docs).
        torch.utils.deterministic.fill_uninitialized_memory = False

    def teardown(self, stage: str) -> None:
        # A ddp_spawn rank exits through os._exit, skipping the atexit hook that would close its
        # process group; gloo's threads then sometimes abort the exit ("terminate called").
        spawned_rank = multiprocessing.parent_process() is not None
        if stage == "fit" and spawned_rank and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    # -- optimisation -------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
