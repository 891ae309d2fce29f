"""bench/bench_data.py runs at a tiny size and its rows (--json) say what the scratch copy is for
(the benchmarks themselves are not tests: README, Performance)."""

import json

import pytest

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
    assert set(rows) == {"Lightning Trainer.fit, no run files", "Lightning + cloudml run files (as train.py)"}
    for label, r in rows.items():
        # Same work on the same machine moments apart: Lightning's epoch is the bare epoch plus overhead.
        assert r["s_per_epoch"] > 0 and r["bare_s_per_epoch"] > 0, (label, r)
        assert r["ratio_min"] <= r["ratio"] <= r["ratio_max"] and 0.7 < r["ratio"] < 1.5, (label, r)
        assert r["pairs"] == 2  # one fit of 3 epochs, the first skipped
    (scaling,) = figures["scaling"]
    assert scaling["samples"] == 2400 and scaling["s_per_epoch"] > 0


def test_bench_models_measures_every_case_it_is_given_and_writes_json_rows(tmp_path):
    out = tmp_path / "rows.json"
    result = run_cli(str(REPO / "bench" / "bench_models.py"), "--models", "cnn", "transformer", "--sizes", "32x32:4",
                     "45x61:2", "--steps", "1", "--warmup", "1", "--repeats", "1", "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {(r["model"], r["frames"]): r for r in json.loads(out.read_text())}
    assert set(rows) == {(m, f) for m in ("cnn", "transformer") for f in ("32x32", "45x61")}
    assert rows["cnn", "32x32"]["parameters"] == 27_105 and rows["transformer", "32x32"]["parameters"] == 56_769
    assert rows["transformer", "45x61"]["grid"] == "6x8" and rows["transformer", "45x61"]["batch"] == 2
    for row in rows.values():
        assert row["samples_per_s"] > 0 and row["ms_per_step"] > 0 and row["max_rss_mb"] > row["peak_mb"] >= 0, row
        assert row["fp32_gflops"] > 1 and 0 < row["mfu_pct"] < 100, row
        assert row["mfu_pct"] == pytest.approx(row["gflop_per_step"] / row["ms_per_step"] * 1000 / row["fp32_gflops"] * 100)
    # a bigger frame costs more FLOPs a sample (the CNN stem scales with the pixels)
    assert rows["cnn", "45x61"]["gflop_per_step"] / 2 > rows["cnn", "32x32"]["gflop_per_step"] / 4


def test_bench_models_runs_the_steps_under_bf16_autocast_when_asked(tmp_path):
    out = tmp_path / "rows.json"
    result = run_cli(str(REPO / "bench" / "bench_models.py"), "--models", "cnn", "--sizes", "32x32:2", "--steps", "1",
                     "--warmup", "1", "--repeats", "1", "--autocast", "bfloat16", "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["autocast"] == "bfloat16" and row["bfloat16_gflops"] > 0 and 0 < row["mfu_pct"] < 100
    assert "autocast to bfloat16" in result.stdout and "bfloat16 matmul GFLOP/s" in result.stdout
