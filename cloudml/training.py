"""One training run from a composed config: data -> model -> loss -> module -> Trainer.fit."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from cloudml.errors import CloudMLError
from cloudml.jobs import job_state
from cloudml.models import count_parameters
from cloudml.models.build import build_model
from cloudml.module import CloudBaseRegressor

# Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates: library noise, not ours.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def build(node: DictConfig, **kwargs):
    """`instantiate`, letting a user-facing CloudMLError through unwrapped (one line, no traceback)."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, CloudMLError):
            raise exc.__cause__ from None
        raise


def _build_all(group: DictConfig | None) -> list:
    return [build(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def checked_checkpoint(path: Path) -> Path:
    """`path` if it loads as a checkpoint with `weights_only=True` (no arbitrary pickles)."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... here
        text = str(exc).strip()
        if "WeightsUnpickler error:" in text:  # not torch's advice to load it unsafely: what it refused
            text = "refused by weights_only loading: " + text.split("WeightsUnpickler error:", 1)[1].strip()
        reason = text.splitlines()[0].split(". ")[0][:160] if text else type(exc).__name__
        raise CloudMLError(
            f"{path}: not a loadable checkpoint ({reason}); delete it to restart this job from scratch"
        ) from None
    if not isinstance(content, dict) or "state_dict" not in content:
        raise CloudMLError(f"{path}: not a Lightning checkpoint (no 'state_dict'); delete it to restart this job")
    return path


def run(cfg: DictConfig, out_dir: Path) -> str:
    """Train (or skip, or resume) the job whose outputs live in `out_dir`; return its state."""
    state = job_state(out_dir, cfg)
    if state == "finished":
        print(f"[cloudml] {out_dir}: already finished, skipped", flush=True)
        return state
    epochs = cfg.trainer.max_epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise CloudMLError(f"trainer.max_epochs={epochs}: expected an integer >= 1")
    loss = build(cfg.loss)  # config and checkpoint are checked before the data is read (minutes on a big file)
    ckpt = checked_checkpoint(out_dir / "checkpoints" / "last.ckpt") if state == "resume" else None
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    data = build(cfg.data)
    data.setup("fit")
    data.write_run_files(out_dir)
    model = build_model(cfg.model, frame_shape=data.frame_shape, n_scalars=data.n_scalars)
    scheduler = build(cfg.scheduler) if cfg.get("scheduler") else None
    module = CloudBaseRegressor(model, loss, build(cfg.optimizer), scheduler,
                                data.stats["target"]["mean"], data.stats["target"]["std"],
                                max_nonfinite_steps=cfg.nan_guard.max_skipped_steps)  # fmt: skip
    info = data.describe()
    name = HydraConfig.get().runtime.choices.get("model", "custom") if HydraConfig.initialized() else "custom"
    print(
        f"[cloudml] {out_dir}: {state} | model {name} ({'x'.join(map(str, model.tokens.grid))} tokens a frame)/"
        f"{count_parameters(model):,} parameters | "
        f"data {info['path']} ({info['n_train']} train / {info['n_val']} val, split {info['split']} "
        f"{','.join(info['val_flights'])}) | λ={loss.variance_lambda:g} ({loss.denominator}) | "
        f"{torch.get_num_threads()} torch threads",
        flush=True,
    )
    trainer: L.Trainer = build(cfg.trainer, callbacks=_build_all(cfg.callbacks),
                               logger=_build_all(cfg.get("logger")) or False)  # fmt: skip
    trainer.fit(module, datamodule=data, ckpt_path=ckpt, weights_only=True)
    return state
