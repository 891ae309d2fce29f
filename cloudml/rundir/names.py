"""Names in the run directory that users' scripts and the analysis rely on."""

HYDRA_CONFIG = ".hydra/config.yaml"
HYDRA_OVERRIDES = ".hydra/overrides.yaml"
HYDRA_RUNTIME = ".hydra/hydra.yaml"
IDENTITY = "identity.json"
HISTORY = "history.csv"
SUMMARY = "summary.json"
PREDICTIONS = "predictions.npz"
DATA = "data.json"
SPLIT = "split.npz"
NORMALIZATION = "normalization.json"
CHECKPOINT = "checkpoints/last.ckpt"

HISTORY_COLUMNS = [
    "epoch", "lr", "train_loss", "train_base_loss", "train_var_loss",
    "val_loss", "val_base_loss", "val_var_loss",
    "val_r2", "val_variance_ratio", "val_mae", "val_rmse",
    "train_loss_max", "grad_norm_max", "base_loss_spike", "grad_norm_spike", "epoch_seconds",
]  # fmt: skip
FINAL_KEYS = ("val_r2", "val_variance_ratio", "val_mae", "val_rmse")

STATUSES = ("completed", "diverged", "failed", "running", "interrupted")
FINISHED = ("completed", "diverged")  # a re-run skips these; the others resume or start again
STABILITIES = ("stable", "unstable", "diverged")
