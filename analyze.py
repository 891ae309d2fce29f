"""Analyse a sweep: Table 2, λ selection, decision, findings, figures.

    python analyze.py                                   # newest sweep under multirun/
    python analyze.py sweep_dir=PATH results_dir=PATH

Never trains and never imports torch: it reads the files the runs wrote.
"""
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

HERE = Path(__file__).resolve().parent


@hydra.main(config_path="conf", config_name="analyze", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from cloudml.analysis.outputs import prepare_results_dir
    from cloudml.analysis.report import analyze_sweep
    from cloudml.analysis.runs import resolve_sweep_dir
    from cloudml.errors import CloudMLError

    settings = OmegaConf.to_container(cfg, resolve=True)
    cwd = Path.cwd()
    selected = Path(settings["selected_loss_config"] or HERE / "conf" / "loss" / "selected.yaml")
    results_dir = settings["results_dir"]
    try:
        sweep_dir = resolve_sweep_dir(settings["sweep_dir"], cwd)
        results_dir = prepare_results_dir(settings["results_dir"], cwd)
        _, text = analyze_sweep(sweep_dir, results_dir, settings, selected)
    except CloudMLError as exc:
        print(f"analyze.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # a result file that cannot be replaced (a directory in its way, a full disk)
        where = exc.filename2 or exc.filename or results_dir
        print(f"analyze.py: error: {where}: cannot be written ({exc.strerror or exc}); "
              f"expected results_dir {results_dir} to be a writable directory", file=sys.stderr)
        sys.exit(2)
    print(text)


if __name__ == "__main__":
    main()
