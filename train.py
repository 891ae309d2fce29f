"""Train one cloud-base-height model; with -m, a sweep (see conf/config.yaml).

    python train.py                                        # Section 2 baseline, built-in data
    python train.py -m loss.variance_lambda=0,0.5,1,2,5,10  # the λ sweep
    python train.py -m hparams_search=optuna 'loss.variance_lambda=interval(0,10)'  # a search (docs/tracking.md)

Each job returns its objective (`objective` in conf/config.yaml), which is what a search sweeper reads.
"""

import re
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from cloudml.errors import CloudMLError
from cloudml.training.stops import Interrupted, on_signals


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig):
    from cloudml.objective import job_objective
    from cloudml.training.console import end_line
    from cloudml.training.run import run  # heavy imports (torch, Lightning) only once Hydra parsed the CLI

    hydra_cfg = HydraConfig.get()
    out_dir, model_name = Path(hydra_cfg.runtime.output_dir), hydra_cfg.runtime.choices.get("model")
    try:
        run(cfg, out_dir, model_name)
    except CloudMLError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr, flush=True)
        if hydra_cfg.mode != RunMode.MULTIRUN:
            sys.exit(2)  # in a sweep the other jobs go on; the job is marked failed
    except Interrupted as stop:  # a sweep stops as well: the user (or the scheduler) asked it to
        print(f"train.py: {stop}: {out_dir} is marked interrupted; the same command resumes it", file=sys.stderr, flush=True)
        sys.exit(stop.exit_code)
    print(end_line(out_dir), flush=True)
    return job_objective(cfg.get("objective", "val_r2"), out_dir)


def unknown_config_choice(argv: list, conf: Path = Path(__file__).resolve().parent / "conf") -> str | None:
    """The one-line error for `group=name` where conf/<group>/<name>.yaml does not exist (Hydra's
    own message is a dozen lines), or None. Only plain names in cloudml's own groups are checked."""
    if any(a.startswith(("hydra.searchpath", "--config-dir", "-cd", "--config-path", "-cp")) for a in argv):
        return None  # configs may come from elsewhere: let Hydra look
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        group = conf / key
        if not sep or key.startswith("hydra") or not group.is_dir() or not re.fullmatch(r"\[?[\w.-]+(,[\w.-]+)*\]?", value):
            continue
        for name in value.strip("[]").split(","):
            if name != "null" and not (group / f"{name}.yaml").is_file():
                return _no_such_config(conf, key, name)
        if key == "experiment" and (group / f"{value}.yaml").is_file():
            for used_group, used in re.findall(r"^\s*-\s*override\s+/(\w+):\s*([\w.-]+)", (group / f"{value}.yaml").read_text(), re.M):
                if not (conf / used_group / f"{used}.yaml").is_file():
                    return f"+experiment={value} uses {_no_such_config(conf, used_group, used)}"
    return None


GENERATED = {("loss", "selected"): "python analyze.py writes it from a Section 2 sweep: run that first"}


def _no_such_config(conf: Path, group: str, name: str) -> str:
    options = ", ".join(sorted(p.stem for p in (conf / group).glob("*.yaml")))
    hint = GENERATED.get((group, name))
    return f"{group}={name}: no such config in conf/{group}/ ({hint + '; ' if hint else ''}expected one of {options})"


if __name__ == "__main__":
    from cloudml.extras import missing_on_command_line
    from cloudml.objective import plugin_preset_trap

    argv, conf = sys.argv[1:], Path(__file__).resolve().parent / "conf"
    if error := unknown_config_choice(argv, conf) or missing_on_command_line(argv, conf) or plugin_preset_trap(argv):
        print(f"train.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    with on_signals():
        try:
            main()
        except Interrupted as stop:  # outside a job: while Hydra composes, or between the jobs of a sweep
            print(f"train.py: {stop}", file=sys.stderr)
            sys.exit(stop.exit_code)
