"""bench/bench_data.py runs at a tiny size and its rows (--json) say what the scratch copy is for
(the benchmarks themselves are not tests: README, Performance)."""

import json

from conftest import REPO, run_cli


def test_bench_data_runs_small_and_the_scratch_copy_beats_decompressing_every_epoch():
    result = run_cli(str(REPO / "bench" / "bench_data.py"), "--samples", "640", "--lazy-budget-mb", "4",
                     "--pairs", "2", "--epochs", "2", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {row["case"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"datamodule (fits budget)", "datamodule (lazy, file 3x budget)", "the same, scratch_dir=false"}
    lazy, decompressing = rows["datamodule (lazy, file 3x budget)"]["batches_per_s"], rows["the same, scratch_dir=false"]["batches_per_s"]
    assert lazy > 2 * decompressing, (lazy, decompressing)
    for label, row in rows.items():
        assert 0 < row["ratio"] < 5 and row["data_rss_mb"] < row["budget_mb"] + 300, (label, row)


def test_bench_training_pairs_every_lightning_epoch_with_a_bare_one():
    result = run_cli(str(REPO / "bench" / "bench_training.py"), "--epochs", "3", "--fits", "1", "--scaling", "1",
                     "--repeats", "1", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    rows = {r["loop"]: r for r in figures["overhead"]}
    assert set(rows) == {"Lightning Trainer.fit, no callbacks", "Lightning + cloudml run files (as train.py)"}
    for label, r in rows.items():
        # Same work on the same machine moments apart: Lightning's epoch is the bare epoch plus overhead.
        assert r["s_per_epoch"] > 0 and r["bare_s_per_epoch"] > 0, (label, r)
        assert r["ratio_min"] <= r["ratio"] <= r["ratio_max"] and 0.7 < r["ratio"] < 1.5, (label, r)
        assert r["pairs"] == 2  # one fit of 3 epochs, the first skipped
    (scaling,) = figures["scaling"]
    assert scaling["samples"] == 2400 and scaling["s_per_epoch"] > 0
