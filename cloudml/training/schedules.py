"""Learning-rate schedules built from config: each takes the optimiser and how many times the
schedule will be stepped in the whole run (optimiser steps or epochs, as its `interval` says)."""

from __future__ import annotations

import torch


def warmup_cosine(optimizer, total_steps: int, max_lr: float, pct_start: float = 0.1, div_factor: float = 25.0,
                  final_div_factor: float = 100.0) -> torch.optim.lr_scheduler.LRScheduler:  # fmt: skip
    """Linear warm-up over the first `pct_start` of the steps to `max_lr`, then cosine decay."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
                                               anneal_strategy="cos", div_factor=div_factor,
                                               final_div_factor=final_div_factor, cycle_momentum=False)  # fmt: skip


def linear_warmup(optimizer, total_steps: int, warmup_steps: int, start_factor: float) -> torch.optim.lr_scheduler.LRScheduler:
    """The optimiser's lr × `start_factor`, rising linearly to the full lr over `warmup_steps` steps."""
    del total_steps  # a fixed warm-up length, whatever the run's length
    return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
