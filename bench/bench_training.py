"""Training speed on this machine: seconds per epoch of the default run, Lightning's
overhead against a bare PyTorch loop, and how epoch time scales with the sample count.

    python bench/bench_training.py              # default model and data, 15 epochs
    python bench/bench_training.py --epochs 3   # quicker

Overhead is measured in pairs inside one `Trainer.fit`: before each Lightning epoch, one bare
epoch runs on an independent copy (same model, batches, optimiser, schedule, metrics, and the
same torch settings, e.g. deterministic algorithms). This VM's speed drifts 10-30 % within a
minute, so whole fits timed one after another cannot resolve a 5 % difference; adjacent
epochs can. The ratio is the median of the per-pair ratios of `--fits` fits (each fit's
first pair skipped: warm-up).
Prints a table. Not a test: numbers depend on the machine (see README, Performance).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cloudml.models.build import build_model
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
    torch.manual_seed(0)
    model = build_model(cfg.model, frame_shape=data.frame_shape, n_scalars=data.n_scalars)
    module = CloudBaseRegressor(model, instantiate(cfg.loss), instantiate(cfg.optimizer), instantiate(cfg.scheduler),
                                data.stats["target"]["mean"], data.stats["target"]["std"])  # fmt: skip
    return data, module


class PairedEpochs(L.Callback):
    """Before each Lightning epoch, runs and times one bare epoch; a Lightning epoch is timed
    from its start to the next one's (so it includes every callback's work), the last one
    until training ends. `setup_s`: from `Trainer.fit` to the first epoch (once per run)."""

    def __init__(self, bare_epoch):
        self.bare_epoch, self.bare, self.lightning, self.mark = bare_epoch, [], [], None
        self.fit_called = self.setup_s = None  # set by lightning_fit / the first epoch

    def on_train_epoch_start(self, trainer, module) -> None:
        now = time.perf_counter()
        if self.mark is None:
            self.setup_s = now - self.fit_called
        else:
            self.lightning.append(now - self.mark)
        self.bare.append(self.bare_epoch())
        self.mark = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        self.lightning.append(time.perf_counter() - self.mark)

    def ratios(self) -> list:
        return [light / bare for bare, light in zip(self.bare[1:], self.lightning[1:])]


def lightning_fit(cfg, cache_dir: str, epochs: int, with_run_files: bool, timer: L.Callback = None) -> float:
    """Seconds for Trainer.fit (train + validation every epoch), optionally with cloudml's callbacks."""
    data, module = build(cfg, cache_dir)
    callbacks = [timer] if timer else []  # first: its epoch-start mark precedes the others' hooks
    out = Path(tempfile.mkdtemp())
    if with_run_files:
        from cloudml.callbacks import LastCheckpoint, RunRecorder

        callbacks += [RunRecorder(str(out), 0.0, 0, "transformer", epochs), LastCheckpoint(str(out / "last.ckpt"))]
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, logger=False, callbacks=callbacks,
                        enable_checkpointing=with_run_files, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, deterministic=True)  # fmt: skip
    if timer:
        timer.fit_called = time.perf_counter()
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    return time.perf_counter() - start


def bare_epochs(cfg, cache_dir: str, epochs: int):
    """A function running one epoch of the same work in plain PyTorch (same model, batches,
    optimiser, schedule, metrics) on its own copy; returns its seconds."""
    data, module = build(cfg, cache_dir)
    train, val = data.train_dataloader(), data.val_dataloader()
    optimizer = module.optimizer_factory(module.model.parameters())
    scheduler = module.scheduler_factory(optimizer, total_steps=epochs * len(train))
    done = 0

    def epoch() -> float:
        nonlocal done
        start = time.perf_counter()
        train.batch_sampler.set_epoch(done)
        done += 1
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

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--fits", type=int, default=2, help="overhead: fits per variant, their pairs pooled")
    parser.add_argument("--repeats", type=int, default=3, help="scaling: repeats per size; medians are reported")
    parser.add_argument("--scaling", type=int, nargs="*", default=[1, 2, 4], help="sample-count multipliers")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    cache = tempfile.mkdtemp()
    cfg = compose_default([])
    quiet = contextlib.redirect_stderr(io.StringIO())
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731

    with quiet:
        build(cfg, cache)  # generate the synthetic file once, outside the timings
        timers = {"Lightning Trainer.fit, no callbacks": [], "Lightning + cloudml run files (as train.py)": []}
        for _ in range(args.fits):
            for label, run_files in zip(timers, (False, True)):
                timers[label].append(PairedEpochs(bare_epochs(compose_default([]), cache, args.epochs)))
                lightning_fit(compose_default([]), cache, args.epochs, run_files, timers[label][-1])
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"default model (transformer) on the default built-in data; {args.epochs} epochs a fit, "
          f"{args.fits} fits each: {args.fits * (args.epochs - 1)} paired epochs (each fit's first skipped)")  # fmt: skip
    print(f"{'loop':<44}{'s/epoch':>9}{'bare s/epoch':>14}{'vs bare [range]':>22}{'fit set-up ms':>15}")
    for label, fits in timers.items():
        ratios = [r for timer in fits for r in timer.ratios()]
        light = statistics.median(t for timer in fits for t in timer.lightning[1:])
        bare = statistics.median(t for timer in fits for t in timer.bare[1:])
        spread = f"{statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]"
        setup = statistics.median(timer.setup_s for timer in fits)
        print(f"{label:<44}{light:>9.3f}{bare:>14.3f}{spread:>22}{setup * 1000:>15.1f}")
    print("vs bare: median of the per-epoch ratios, each Lightning epoch against the bare epoch run just before it")
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
