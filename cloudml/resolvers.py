"""OmegaConf resolvers used by conf/, registered when the cloudml package is imported
(so also in launcher child processes that unpickle a training job)."""

import sys

from omegaconf import OmegaConf

from cloudml.objective import directions as _directions

OmegaConf.register_new_resolver("cloudml.or_default", lambda s: s or "default", replace=True)
# Progress bar for interactive runs only: in logs and sweeps it only adds noise.
OmegaConf.register_new_resolver("cloudml.isatty", lambda: sys.stdout.isatty(), replace=True)
# A sweeper's direction(s) follow the objective a job returns (maximize val_r2, minimize |log v|, ...).
OmegaConf.register_new_resolver("cloudml.directions", _directions, replace=True)
