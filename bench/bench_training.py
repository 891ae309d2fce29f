"""Training speed on this machine: seconds per epoch of the default run, Lightning's
overhead against a bare PyTorch loop, and how epoch time scales with the sample count.

    python bench/bench_training.py              # default model and data, 15 epochs
    python bench/bench_training.py --epochs 3   # quicker

Prints a table. Not a test: numbers depend on the machine (see README, Performance).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import platform
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cloudml.module import CloudBaseRegressor

REPO = Path(__file__).resolve().parents[1]


def compose_default(overrides: list) -> object:
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def build(cfg, cache_dir: str):
    """Data module, model and LightningModule exactly as train.py builds them."""
    cfg.data.cache_dir = cache_dir
    data = instantiate(cfg.data)
    data.setup("fit")
    T, C, H, W = data.frame_shape
    torch.manual_seed(0)
    model = instantiate(cfg.model, in_channels=C, frames=T, image_size=(H, W), n_scalars=data.n_scalars)
    module = CloudBaseRegressor(model, instantiate(cfg.loss), instantiate(cfg.optimizer), instantiate(cfg.scheduler),
                                data.stats["target"]["mean"], data.stats["target"]["std"])  # fmt: skip
    return data, module


def lightning_fit(cfg, cache_dir: str, epochs: int, with_run_files: bool) -> float:
    """Seconds for Trainer.fit (train + validation every epoch), optionally with cloudml's callbacks."""
    data, module = build(cfg, cache_dir)
    callbacks = []
    out = Path(tempfile.mkdtemp())
    if with_run_files:
        from cloudml.callbacks import LastCheckpoint, RunRecorder

        callbacks = [RunRecorder(str(out), 0.0, 0, "transformer", epochs), LastCheckpoint(str(out / "last.ckpt"))]
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, logger=False, callbacks=callbacks,
                        enable_checkpointing=with_run_files, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, deterministic=True)  # fmt: skip
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    return time.perf_counter() - start


def bare_loop(cfg, cache_dir: str, epochs: int) -> float:
    """Seconds for the same work in plain PyTorch: same model, batches, optimiser, schedule, metrics."""
    data, module = build(cfg, cache_dir)
    train, val = data.train_dataloader(), data.val_dataloader()
    optimizer = module.optimizer_factory(module.model.parameters())
    scheduler = module.scheduler_factory(optimizer, total_steps=epochs * len(train))
    start = time.perf_counter()
    for _ in range(epochs):
        module.train()
        for batch in train:
            loss = module.loss(module(batch), batch["target"]).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        module.eval()
        module.val_metrics.reset()
        with torch.no_grad():
            for batch in val:
                module.val_metrics.update(module.to_km(module(batch)), module.to_km(batch["target"]))
        module.val_metrics.compute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; medians are reported")
    parser.add_argument("--scaling", type=int, nargs="*", default=[1, 2, 4], help="sample-count multipliers")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    cache = tempfile.mkdtemp()
    cfg = compose_default([])
    quiet = contextlib.redirect_stderr(io.StringIO())
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731

    with quiet:
        build(cfg, cache)  # generate the synthetic file once, outside the timings
        bare, light, full = [], [], []
        for _ in range(args.repeats):  # alternate, so machine drift hits all three alike
            bare.append(bare_loop(compose_default([]), cache, args.epochs))
            light.append(lightning_fit(compose_default([]), cache, args.epochs, with_run_files=False))
            full.append(lightning_fit(compose_default([]), cache, args.epochs, with_run_files=True))
    b, l, f = median(bare), median(light), median(full)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"default model (transformer) on the default built-in data, {args.epochs} epochs, median of {args.repeats}")
    print(f"{'loop':<44}{'s/epoch':>10}{'total s':>10}{'vs bare':>10}")
    for name, t in (("bare PyTorch loop (train + val metrics)", b), ("Lightning Trainer.fit, no callbacks", l),
                    ("Lightning + cloudml run files (as train.py)", f)):  # fmt: skip
        print(f"{name:<44}{t / args.epochs:>10.3f}{t:>10.2f}{t / b:>10.3f}")

    print(f"\nscaling: epoch time vs samples (Lightning + run files, {max(2, args.epochs // 5)} epochs)")
    print(f"{'samples':>10}{'s/epoch':>10}{'per 1k samples':>16}")
    epochs = max(2, args.epochs // 5)
    for k in args.scaling:
        with quiet:
            spf = compose_default([]).data.synthetic.samples_per_flight * k
            cfg_k = compose_default([f"data.synthetic.samples_per_flight={spf}"])
            build(cfg_k, cache)
            t = median([lightning_fit(compose_default([f"data.synthetic.samples_per_flight={spf}"]), cache, epochs, True)
                        for _ in range(args.repeats)])  # fmt: skip
        n = 16 * spf
        print(f"{n:>10}{t / epochs:>10.3f}{t / epochs / n * 1000:>16.3f}")


if __name__ == "__main__":
    main()
