"""Train one cloud-base-height model; with -m, a sweep (see conf/config.yaml).

    python train.py                                        # Section 2 baseline, built-in data
    python train.py -m loss.variance_lambda=0,0.5,1,2,5,10  # the λ sweep
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import cloudml.resolvers  # noqa: F401  (registers ${cloudml.*} resolvers used in conf/)
from cloudml.errors import CloudMLError


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from cloudml.jobs import write_failure
    from cloudml.training import run  # heavy imports (torch, Lightning) only once Hydra parsed the CLI

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        run(cfg, out_dir)
    except CloudMLError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr, flush=True)
        write_failure(out_dir, cfg, exc, hydra_cfg.runtime.choices.get("model"))
        if hydra_cfg.mode != RunMode.MULTIRUN:
            sys.exit(2)  # in a sweep the other jobs go on; the job is marked failed


if __name__ == "__main__":
    main()
