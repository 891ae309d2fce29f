"""One training job from a composed config: skip, resume or start it, then Trainer.fit."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import lightning as L
import torch
from omegaconf import DictConfig

from cloudml import rundir
from cloudml.errors import CloudMLError
from cloudml.models import count_parameters
from cloudml.rundir import Verdicts
from cloudml.training.build import build
from cloudml.training.resume import checked_checkpoint, job_state


def run(cfg: DictConfig, out_dir: Path, model_name: Optional[str] = None) -> str:
    """Train (or skip, or resume) the job whose outputs live in `out_dir`; return its state."""
    state = job_state(out_dir, cfg)
    if state == "finished":
        print(f"[cloudml] {out_dir}: already finished, skipped", flush=True)
        return state
    epochs = cfg.trainer.max_epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise CloudMLError(f"trainer.max_epochs={epochs}: expected an integer >= 1")
    Verdicts.from_config(cfg.get("verdicts"))  # a bad threshold fails before the data is read
    ckpt = checked_checkpoint(out_dir / rundir.CHECKPOINT) if state == "resume" else None  # before the data is read
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    data, module, trainer = build(cfg, out_dir, model_name)
    info, loss = data.describe(), module.loss
    print(
        f"[cloudml] {out_dir}: {state} | model {model_name or 'custom'} ({'x'.join(map(str, module.model.tokens.grid))} "
        f"tokens a frame)/{count_parameters(module.model):,} parameters | "
        f"data {info['path']} ({info['n_train']} train / {info['n_val']} val, split {info['split']} "
        f"{','.join(info['val_flights'])}) | λ={loss.variance_lambda:g} ({loss.denominator}) | "
        f"{torch.get_num_threads()} torch threads",
        flush=True,
    )
    trainer.fit(module, datamodule=data, ckpt_path=ckpt, weights_only=True)
    return state
