"""The run directory: the only interface between training and analysis.

Every training run (a single run, or one job of a sweep) writes these files into its Hydra
job directory; `analyze.py` reads nothing else. This package owns their names, the columns
of the history, every kind of summary, the rules behind its verdicts, and how each file is
written and read back. It imports neither torch nor Lightning, so both sides can use it.

    .hydra/config.yaml        Hydra's record of the run (resolved config)
    identity.json             what the job computes (a re-run with other settings is refused)
    history.csv               one row per epoch (HISTORY_COLUMNS)
    summary.json              status, final metrics, verdicts (see `summary.build_summary`)
    predictions.npz           pred, target (km, validation order), index, flight
    data.json                 the data file, its keys and the split
    split.npz                 train_index, val_index (rows of the data file)
    normalization.json        statistics of the training split
    checkpoints/last.ckpt     enough to resume
"""

from cloudml.rundir.names import (
    CHECKPOINT, DATA, FINAL_KEYS, FINISHED, HISTORY, HISTORY_COLUMNS, HYDRA_CONFIG, HYDRA_OVERRIDES, IDENTITY, NORMALIZATION,
    PREDICTIONS, SPLIT, STABILITIES, STATUSES, SUMMARY,
)  # fmt: skip
from cloudml.rundir.files import (
    RunFileError,
    read_config,
    read_data_info,
    read_history,
    read_name_exclusions,
    read_normalization,
    read_overrides,
    read_predictions,
    read_split,
    read_summary,
    write_data_files,
    write_history,
    write_predictions,
    write_summary,
)
from cloudml.rundir.summary import RunMeta, build_summary
from cloudml.rundir.verdicts import Verdicts, is_collapsed, stability


__all__ = [
    "CHECKPOINT", "DATA", "FINAL_KEYS", "FINISHED", "HISTORY", "HISTORY_COLUMNS", "HYDRA_CONFIG", "HYDRA_OVERRIDES", "IDENTITY", "NORMALIZATION", "PREDICTIONS", "SPLIT", "STABILITIES", "STATUSES", "SUMMARY",
    "RunFileError", "RunMeta", "Verdicts", "build_summary", "is_collapsed", "read_config", "read_data_info",
    "read_history", "read_name_exclusions", "read_normalization", "read_overrides", "read_predictions", "read_split", "read_summary", "stability", "write_data_files",
    "write_history", "write_predictions", "write_summary",
]  # fmt: skip
