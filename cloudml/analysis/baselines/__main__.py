"""``python -m cloudml.analysis.baselines RUN_DIR``: the baselines on that run's split."""
from __future__ import annotations

import argparse
import json
import sys

from cloudml.analysis.baselines import SplitSpec, baselines_for
from cloudml.errors import CloudMLError


def format_baselines(result: dict) -> str:
    """A few lines of plain text."""
    lines = [f"Baselines on split {result['split']!r} of {result['data_path']} "
             f"({result['n_train']} train / {result['n_val']} val samples)",
             f"{'model':<24}{'val_r2':>9}{'var_ratio_%':>13}{'val_mae':>9}{'val_rmse':>10}"]  # fmt: skip
    for name, label in (("mean_predictor", "mean predictor"), ("ridge", f"ridge (alpha={result['ridge']['alpha']:.3g})")):
        m = result[name]
        lines.append(f"{label:<24}{m['val_r2']:>9.3f}{100 * m['val_variance_ratio']:>13.1f}"
                     f"{m['val_mae']:>9.3f}{m['val_rmse']:>10.3f}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudml.analysis.baselines",
                                     description="Mean predictor and ridge on a run's own train/validation split.")  # fmt: skip
    parser.add_argument("run_dir", help="a run directory holding data.json and split.npz")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = baselines_for(SplitSpec.of_run(args.run_dir))
    except CloudMLError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if not result.get("available"):
        print(f"{parser.prog}: error: {result['reason']}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_baselines(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
