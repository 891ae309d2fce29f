"""Training speed and peak memory of every architecture (conf/model/) at several frame sizes.

    python bench/bench_models.py                                   # 5 models x 32x32, 110x160, 440x640
    python bench/bench_models.py --sizes 32x32 64x96:8 --steps 2   # quicker; HxW[:batch]
    python bench/bench_models.py --json rows.json                  # also the rows as JSON
    python bench/bench_models.py --autocast bfloat16               # the steps under CPU autocast to bf16

One training step = forward + backward + AdamW step, with the default loss and optimiser, on
random frames (T = 3, C = 1) and 2 scalars. Each case runs in a fresh subprocess: after
`--warmup` steps, `--repeats` runs of `--steps` steps are timed; samples/s is the median.
Peak memory: the process's maximum RSS (`resource.getrusage`) after the timed steps minus
its maximum before the first step (torch, the model and the batch loaded), in MB.
Model FLOP utilisation (MFU): the FLOPs of one step's forward + backward (counted by
`torch.utils.flop_counter`: matrix multiplies, convolutions, attention) per second of step,
divided by the fp32 matrix-multiply rate measured in the same process just before (the median
of 5 products of two 1024 x 1024 matrices). `--autocast bfloat16` runs the steps under CPU autocast
to bfloat16 and also measures the bfloat16 product rate (`bfloat16_gflops`); MFU stays against fp32.
Prints a table. Not a test: numbers depend on the machine (see bench/README.md, Models).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("cnn", "cnn_spatial", "cnn_spatial_temporal", "cnn_spatial_multiscale", "transformer")
# Batches that keep one step's activations to a few hundred MB; a size given without one gets 8.
SIZES = ("32x32:64", "110x160:16", "440x640:4")
FRAMES, CHANNELS, SCALARS = 3, 1, 2
# The table's columns: (key of a row, width, format).
COLUMNS = [("model", 24, "<"), ("frames", 8, ">"), ("batch", 5, ">"), ("grid", 5, ">"), ("parameters", 10, ">,"),
           ("samples_per_s", 13, ">.1f"), ("ms_per_step", 11, ">.1f"), ("gflop_per_step", 14, ">.3f"),
           ("fp32_gflops", 11, ">.0f"), ("mfu_pct", 7, ">.1f"), ("peak_mb", 8, ">.0f"), ("max_rss_mb", 10, ">.0f")]  # fmt: skip
MATMUL_SIZE = 1024


def parse_size(text: str) -> tuple:
    """'HxW' or 'HxW:batch' -> (H, W, batch)."""
    shape, _, batch = text.partition(":")
    height, width = (int(n) for n in shape.lower().split("x"))
    return height, width, int(batch or 8)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def matmul_gflops(repeats: int = 5, dtype: str = "float32") -> float:
    """This process's matrix-multiply rate in `dtype` (GFLOP/s): the median of `repeats` 1024 x 1024 products."""
    import torch

    a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, dtype=getattr(torch, dtype)) for _ in range(2))
    a @ b  # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - start)
    return 2 * MATMUL_SIZE**3 / statistics.median(seconds) / 1e9


def step_gflop(model, loss, images, scalars, target) -> float:
    """FLOPs (in G) of one forward + backward in fp32, as torch.utils.flop_counter counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss(model(images, scalars), target).total.backward()
    model.zero_grad()
    return counter.get_total_flops() / 1e9


def measure(model_name: str, height: int, width: int, batch: int, steps: int, warmup: int, repeats: int,
            overrides: list, autocast: str | None = None) -> dict:  # fmt: skip
    """One case, in this process: its row of the table."""
    import contextlib

    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from cloudml.models import count_parameters
    from cloudml.models.build import build_model

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={model_name}", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.model, frame_shape=(FRAMES, CHANNELS, height, width), n_scalars=SCALARS)
    loss, optimizer = instantiate(cfg.loss), instantiate(cfg.optimizer)(model.parameters())
    images, scalars = torch.randn(batch, FRAMES, CHANNELS, height, width), torch.randn(batch, SCALARS)
    target = torch.randn(batch)
    model.train()

    def step() -> None:
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=getattr(torch, autocast)) if autocast else contextlib.nullcontext():
            pred = model(images, scalars)
        loss(pred.float(), target).total.backward()
        optimizer.step()

    gflop, rate = step_gflop(model, loss, images, scalars, target), matmul_gflops()
    before = max_rss_mb()
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds.append((time.perf_counter() - start) / steps)
    per_step = statistics.median(seconds)
    return {
        "model": model_name, "frames": f"{height}x{width}", "batch": batch,
        "grid": "x".join(map(str, model.tokens.grid)), "parameters": count_parameters(model),
        "samples_per_s": batch / per_step, "ms_per_step": 1000 * per_step, "gflop_per_step": gflop,
        "fp32_gflops": rate, "mfu_pct": 100 * gflop / per_step / rate,
        "peak_mb": max_rss_mb() - before, "max_rss_mb": max_rss_mb(), "torch_threads": torch.get_num_threads(),
        "autocast": autocast, **({f"{autocast}_gflops": matmul_gflops(dtype=autocast)} if autocast else {}),
    }  # fmt: skip


def run_case(args, model_name: str, size: str) -> dict:
    """`measure` in a fresh subprocess, so that each case's peak memory is its own."""
    cmd = [sys.executable, __file__, "--case", model_name, size, "--steps", str(args.steps), "--warmup",
           str(args.warmup), "--repeats", str(args.repeats), *(f"--override={o}" for o in args.override),
           *(["--autocast", args.autocast] if args.autocast else [])]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench_models.py: {model_name} at {size} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="frame sizes HxW[:batch]")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    parser.add_argument("--override", action="append", default=[], help="a Hydra override, e.g. model.max_tokens=256")
    parser.add_argument("--autocast", choices=["bfloat16"], help="run the steps under CPU autocast to this dtype")
    parser.add_argument("--json", type=Path, help="also write the rows (a list of dicts) here")
    parser.add_argument("--case", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)  # one subprocess case
    args = parser.parse_args()
    if args.case:
        height, width, batch = parse_size(args.case[1])
        row = measure(args.case[0], height, width, batch, args.steps, args.warmup, args.repeats, args.override,
                      args.autocast)
        print(json.dumps(row))
        return
    for size in args.sizes:
        parse_size(size)  # a malformed size fails here, before any case runs
    print(f"{platform.processor() or platform.machine()}, {platform.python_version()}; T={FRAMES}, C={CHANNELS}, "
          f"{SCALARS} scalars; {args.warmup} warm-up steps, median of {args.repeats} x {args.steps} steps"
          + (f"; overrides {' '.join(args.override)}" if args.override else "")
          + (f"; autocast to {args.autocast}" if args.autocast else ""))  # fmt: skip
    print(" ".join(f"{name:{fmt[0]}{width}}" for name, width, fmt in COLUMNS))
    rows = []
    for size in args.sizes:
        for model_name in args.models:
            row = run_case(args, model_name, size)
            rows.append(row)
            print(" ".join(f"{row[name]:{fmt[0]}{width}{fmt[1:]}}" for name, width, fmt in COLUMNS), flush=True)
    print(f"{rows[0]['torch_threads']} torch threads; peak_mb = max RSS while training minus max RSS before it")
    if args.autocast:
        print(f"{args.autocast} matmul GFLOP/s (same processes): " + ", ".join(f"{r[args.autocast + '_gflops']:.0f}" for r in rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
