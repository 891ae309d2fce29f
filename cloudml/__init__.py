"""cloudml: diagnose and cure variance collapse in cloud-base-height regression.

This package root stays free of torch imports so that the analysis side
(`analyze.py`, `cloudml.analysis`) starts in about a second.
"""

from cloudml import resolvers  # noqa: F401  (${cloudml.*} in conf/, also in launcher child processes)

__version__ = "0.1.0"
