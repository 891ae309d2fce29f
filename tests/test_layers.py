"""The layers import downward only: the analysis and the run-directory contract never import
torch or the training side, the data layer knows nothing of models, losses or analysis, and the
models know nothing of Lightning or the data. Each import is checked in a fresh interpreter."""

import subprocess
import sys

import pytest

from conftest import REPO

FORBIDDEN = {
    "cloudml.rundir": {"torch", "lightning", "pandas", "cloudml.data", "cloudml.models", "cloudml.training", "cloudml.analysis"},
    "cloudml.analysis.report": {"torch", "lightning", "torchmetrics", "matplotlib", "cloudml.training", "cloudml.models",
                                "cloudml.data.datamodule"},
    "cloudml.analysis.baselines": {"torch", "lightning", "cloudml.training", "cloudml.models"},
    "cloudml.data.datamodule": {"cloudml.models", "cloudml.training", "cloudml.analysis"},
    "cloudml.data.__main__": {"torch", "lightning", "cloudml.models", "cloudml.training", "cloudml.analysis"},
    "cloudml.models": {"lightning", "cloudml.data", "cloudml.training", "cloudml.analysis"},
}  # fmt: skip


@pytest.mark.parametrize("module", FORBIDDEN)
def test_module_imports_nothing_from_the_layers_above_it(module):
    forbidden = sorted(FORBIDDEN[module])
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            f"print(','.join(sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {forbidden!r}))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"
