"""cloudml.analysis.baselines: mean predictor and ridge on frame statistics, scored on the run's split."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cloudml.analysis import baselines as bl
from cloudml.analysis.baselines.features import read_features
from fakes import write_h5, write_run

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(7)
N = 160
TRAIN = RNG.permutation(np.arange(100))            # unsorted, like real splits
VAL = RNG.permutation(np.arange(100, N))


def make_run(tmp_path: Path, target: np.ndarray, images: np.ndarray) -> Path:
    data = write_h5(tmp_path / "data.h5", images, target, scalars=RNG.random((N, 2)))
    return write_run(tmp_path / "sweep", 0, target=target[VAL], pred=None,
                     train_index=TRAIN, val_index=VAL, data_path=data)


def test_ridge_recovers_a_target_linear_in_a_frame_statistic(tmp_path):
    images = RNG.random((N, 3, 8, 8), dtype=np.float32) * RNG.uniform(0.2, 2.0, (N, 1, 1, 1))
    target = 0.3 + 1.7 * images[:, 1].std(axis=(1, 2))  # km, exact function of std of frame 1
    result = bl.baselines_for(bl.SplitSpec.of_run(make_run(tmp_path, target, images)))
    assert result["ridge"]["val_r2"] > 0.98
    assert result["ridge"]["val_variance_ratio"] == pytest.approx(1.0, abs=0.05)
    assert result["mean_predictor"]["val_r2"] <= 0
    assert result["mean_predictor"]["val_variance_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert (result["n_train"], result["n_val"]) == (100, 60)
    assert result["mean_predictor"]["train_mean_km"] == pytest.approx(target[TRAIN].astype(np.float32).mean(), rel=1e-6)


def test_ridge_on_pure_noise_has_no_skill(tmp_path):
    images = RNG.random((N, 3, 8, 8), dtype=np.float32)
    result = bl.baselines_for(bl.SplitSpec.of_run(make_run(tmp_path, RNG.gamma(2, 0.5, N), images)))
    assert result["ridge"]["val_r2"] < 0.1
    assert result["mean_predictor"]["val_r2"] <= 0


def test_features_accept_channel_axis_and_read_in_small_chunks(tmp_path):
    images = RNG.random((N, 2, 3, 6, 6), dtype=np.float32) + np.linspace(0, 1, N)[:, None, None, None, None]
    target = 2.0 * images[:, 0].mean(axis=(1, 2, 3))
    spec = bl.SplitSpec.of_run(make_run(tmp_path, target, images))
    rows = np.unique(np.concatenate([spec.train_index, spec.val_index]))
    X_small, y_small, names, _ = read_features(spec.data_path, spec.keys, rows, memory_budget_mb=0.001)  # 1 row per chunk
    X_big, y_big, _, _ = read_features(spec.data_path, spec.keys, rows, memory_budget_mb=64)
    np.testing.assert_array_equal(X_small, X_big)
    assert X_small.shape == (N, 5 * 2 - 1 + 2) and len(names) == X_small.shape[1]
    assert bl.baselines_for(spec)["ridge"]["val_r2"] > 0.98


def test_missing_data_file_is_reported_not_raised(tmp_path):
    run = write_run(tmp_path, 0, target=np.ones(3), pred=None, train_index=np.arange(5),
                    val_index=np.arange(5, 8), data_path=tmp_path / "gone.h5")
    result = bl.baselines_for(bl.SplitSpec.of_run(run))
    assert result == {"available": False, "reason": f"data file {tmp_path / 'gone.h5'} not found"}


def test_results_are_cached_per_file_and_split(tmp_path, monkeypatch):
    images = RNG.random((N, 3, 8, 8), dtype=np.float32)
    spec = bl.SplitSpec.of_run(make_run(tmp_path, RNG.random(N), images))
    cache = tmp_path / "cache.json"
    first = bl.baselines_for(spec, cache)
    monkeypatch.setattr(bl, "compute_predictions", lambda *a, **k: pytest.fail("recomputed"))
    assert bl.baselines_for(spec, cache) == json.loads(json.dumps(first))
    other = bl.SplitSpec(spec.data_path, spec.keys, spec.split, spec.train_index[1:], spec.val_index, None)
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        bl.baselines_for(other, cache)  # another split is another cache entry


def test_cli_prints_baselines_for_a_run(tmp_path):
    images = RNG.random((N, 3, 8, 8), dtype=np.float32)
    run = make_run(tmp_path, 1 + images[:, 0].mean(axis=(1, 2)), images)
    proc = subprocess.run([sys.executable, "-m", "cloudml.analysis.baselines", str(run)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "mean predictor" in proc.stdout and "ridge (alpha=" in proc.stdout
    assert "100 train / 60 val" in proc.stdout
