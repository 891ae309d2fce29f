"""Training speed on this machine: seconds per epoch of the default run, Lightning's
overhead against a bare PyTorch loop, and how epoch time scales with the sample count.

    python bench/bench_training.py              # default model and data, 15 epochs
    python bench/bench_training.py --epochs 3   # quicker
    python bench/bench_training.py --json       # the same figures as one JSON object

Overhead is measured in pairs inside one `Trainer.fit`: before each Lightning epoch, one bare
epoch runs on an independent copy (same model, batches, optimiser, schedule, metrics, and the
same torch settings, e.g. deterministic algorithms). This VM's speed drifts 10-30 % within a
minute, so whole fits timed one after another cannot resolve a 5 % difference; adjacent
epochs can. The ratio is the median of the per-pair ratios of `--fits` fits (each fit's
first pair skipped: warm-up).
Prints a table. Not a test: numbers depend on the machine (bench/README.md has today's).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from cloudml.training.build import build

REPO = Path(__file__).resolve().parents[1]


def compose_default(overrides: list, cache_dir: str, epochs: int = 15) -> object:
    """The default config with `epochs` epochs: the Lightning fit and its bare twin's schedule agree."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=[f"data.cache_dir={cache_dir}", "trainer.enable_progress_bar=false",
                                            f"trainer.max_epochs={epochs}", *overrides])  # fmt: skip


def experiment(cfg, out_dir: Path | None = None):
    """Data module, LightningModule and Trainer exactly as train.py builds them (seed 0)."""
    torch.manual_seed(0)
    return build(cfg, out_dir, "transformer")


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


def lightning_fit(cfg, with_run_files: bool, timer: L.Callback = None) -> float:
    """Seconds for Trainer.fit (train + validation every epoch), with or without cloudml's run files."""
    data, module, trainer = experiment(cfg, Path(tempfile.mkdtemp()) if with_run_files else None)
    if timer:
        trainer.callbacks.insert(0, timer)  # first: its epoch-start mark precedes the others' hooks
        timer.fit_called = time.perf_counter()
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    return time.perf_counter() - start


def bare_epochs(cfg):
    """A function running one epoch of the same work in plain PyTorch (same model, batches,
    optimiser, schedule, metrics) on its own copy; returns its seconds."""
    data, module, _ = experiment(cfg)
    train, val = data.train_dataloader(), data.val_dataloader()
    optimizer = module.optimizer_factory(module.model.parameters())
    scheduler = module.scheduler_factory(optimizer, total_steps=cfg.trainer.max_epochs * len(train))
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


def overhead(args, cache: str) -> list[dict]:
    """Per variant: median Lightning and bare s/epoch, the median ratio of the pairs and its range."""
    timers = {"Lightning Trainer.fit, no run files": [], "Lightning + cloudml run files (as train.py)": []}
    for _ in range(args.fits):
        for label, run_files in zip(timers, (False, True)):
            timers[label].append(PairedEpochs(bare_epochs(compose_default([], cache, args.epochs))))
            lightning_fit(compose_default([], cache, args.epochs), run_files, timers[label][-1])
    rows = []
    for label, fits in timers.items():
        ratios = [r for timer in fits for r in timer.ratios()]
        rows.append({"loop": label, "s_per_epoch": statistics.median(t for timer in fits for t in timer.lightning[1:]),
                     "bare_s_per_epoch": statistics.median(t for timer in fits for t in timer.bare[1:]),
                     "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                     "pairs": len(ratios), "setup_ms": 1000 * statistics.median(timer.setup_s for timer in fits)})  # fmt: skip
    return rows


def scaling(args, cache: str) -> list[dict]:
    """Epoch time (Lightning + run files) at multiples of the default sample count."""
    epochs, rows = max(2, args.epochs // 5), []
    for k in args.scaling:
        spf = compose_default([], cache).data.synthetic.samples_per_flight * k
        cfg = lambda: compose_default([f"data.synthetic.samples_per_flight={spf}"], cache, epochs)  # noqa: E731
        experiment(cfg())  # generate the file outside the timings
        t = statistics.median([lightning_fit(cfg(), True) for _ in range(args.repeats)])
        n = compose_default([], cache).data.synthetic.n_flights * spf
        rows.append({"samples": n, "epochs": epochs, "s_per_epoch": t / epochs, "s_per_1000_samples": t / epochs / n * 1000})
    return rows


def print_tables(result: dict) -> None:
    print(f"machine: {result['machine']}, {result['threads']} torch threads, torch {result['torch']}")
    print(f"default model (transformer) on the default built-in data; {result['epochs']} epochs a fit, "
          f"{result['fits']} fits each: {result['overhead'][0]['pairs']} paired epochs (each fit's first skipped)")  # fmt: skip
    print(f"{'loop':<44}{'s/epoch':>9}{'bare s/epoch':>14}{'vs bare [range]':>22}{'fit set-up ms':>15}")
    for r in result["overhead"]:
        spread = f"{r['ratio']:.3f} [{r['ratio_min']:.3f}-{r['ratio_max']:.3f}]"
        print(f"{r['loop']:<44}{r['s_per_epoch']:>9.3f}{r['bare_s_per_epoch']:>14.3f}{spread:>22}{r['setup_ms']:>15.1f}")
    print("vs bare: median of the per-epoch ratios, each Lightning epoch against the bare epoch run just before it")
    print("\nscaling: epoch time vs samples (Lightning + run files)")
    print(f"{'samples':>10}{'s/epoch':>10}{'per 1k samples':>16}")
    for r in result["scaling"]:
        print(f"{r['samples']:>10}{r['s_per_epoch']:>10.3f}{r['s_per_1000_samples']:>16.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--fits", type=int, default=2, help="overhead: fits per variant, their pairs pooled")
    parser.add_argument("--repeats", type=int, default=3, help="scaling: repeats per size; medians are reported")
    parser.add_argument("--scaling", type=int, nargs="*", default=[1, 2, 4], help="sample-count multipliers")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    cache = tempfile.mkdtemp()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):  # the jobs' epoch lines
        experiment(compose_default([], cache))  # generate the synthetic file once, outside the timings
        result = {"machine": platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "epochs": args.epochs, "fits": args.fits, "overhead": overhead(args, cache), "scaling": scaling(args, cache)}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
