"""The data layer on good files: splits, train-only normalisation, lazy = in-memory, the data check.
(Bad files: tests/test_bad_data.py.)"""

import threading

import h5py
import numpy as np
import pytest
import torch

import cloudml.data.frames
import cloudml.data.lazy
import cloudml.data.schema
from cloudml.data.datamodule import CloudDataModule
from cloudml.data.dataset import BatchOrder
from cloudml.data.lazy import BlockCache
from cloudml.data.schema import read_metadata
from cloudml.data.splits import make_split
from conftest import run_cli, write_h5


def test_normalisation_is_fit_on_training_flights_only(tmp_path):
    n = 90
    flight = np.repeat(np.arange(3), 30).astype(np.int32)
    images = np.random.default_rng(0).normal(size=(n, 3, 8, 8)).astype(np.float32)
    images[flight == 2] += 100.0  # the validation flight is wildly different: leakage would show
    scalars = np.random.default_rng(1).normal(size=(n, 2)).astype(np.float32)
    scalars[flight == 2] += 50.0
    target = np.where(flight == 2, 1.9, 0.2 + 0.01 * np.arange(n)).astype(np.float32)
    path = write_h5(tmp_path / "leak.h5", n=n, images=images, scalars=scalars, target=target, flight=flight)
    dm = CloudDataModule(str(path), split={"kind": "flight", "val_flights": ["f2"]}, batch_size=8)
    dm.setup()
    train = flight != 2
    assert dm.stats["images"]["mean"][0] == pytest.approx(images[train].mean(), abs=1e-4)
    assert dm.stats["images"]["std"][0] == pytest.approx(images[train].std(), rel=1e-4)
    assert dm.stats["scalars"]["mean"] == pytest.approx(scalars[train].mean(0).tolist(), abs=1e-4)
    assert dm.stats["target"]["mean"] == pytest.approx(target[train].mean(), rel=1e-6)
    batch = dm.train_set.__getitems__(list(range(len(dm.train_set))))
    assert abs(batch["images"].mean().item()) < 1e-3  # train frames are centred by their own stats


def test_flight_split_holds_out_the_named_flights(tiny_h5):
    meta = read_metadata(tiny_h5)
    split = make_split(meta, "flight", val_flights=["flight_01", "flight_03"])
    assert set(meta.flight[split.val]) == {1, 3} and set(meta.flight[split.train]) == {0, 2}
    assert len(split.train) + len(split.val) == meta.n


def test_cv_fold_holds_out_one_flight_and_random_split_has_the_fraction(tiny_h5):
    meta = read_metadata(tiny_h5)
    for fold in range(4):
        assert set(meta.flight[make_split(meta, "cv", fold=fold).val]) == {fold}
    split = make_split(meta, "random", val_fraction=0.25, seed=1)
    assert len(split.val) == 40 and len(np.intersect1d(split.train, split.val)) == 0
    time_split = make_split(meta, "time", val_fraction=0.25)
    for fid in range(4):  # each flight's last quarter is held out
        rows = np.flatnonzero(meta.flight == fid)
        assert meta.time[np.intersect1d(rows, time_split.val)].min() > meta.time[np.intersect1d(rows, time_split.train)].max()


def test_synthetic_file_names_validation_flights_and_stores_its_oracle(tiny_h5):
    meta = read_metadata(tiny_h5)
    assert 0.0 < meta.attrs["oracle_r2"] < 1.0
    with h5py.File(tiny_h5) as f:
        oracle, target = f["oracle_pred"][()], f["target"][()]
    r2 = 1 - np.mean((oracle - target) ** 2) / target.var()
    assert r2 > 0.3  # the Bayes predictor of the generating process is informative
    assert len(meta.attrs["default_val_flights"]) == 1  # 30 % of 4 flights


@pytest.mark.parametrize("source", ["scratch copy", "compressed chunks"])
def test_lazy_reading_gives_the_same_batches_as_in_memory(tiny_h5, tmp_path, source):
    memory = CloudDataModule(str(tiny_h5), batch_size=16)
    lazy = CloudDataModule(str(tiny_h5), batch_size=16, memory_budget_mb=0, num_workers=2,
                           scratch_dir=tmp_path if source == "scratch copy" else False)  # fmt: skip
    memory.setup()
    lazy.setup()
    assert memory.in_memory and not lazy.in_memory
    for name in ("train_set", "val_set"):
        positions = np.random.default_rng(0).permutation(len(getattr(memory, name)))
        for batch in np.array_split(positions, 7):
            loaded = [getattr(dm, name).__getitems__(batch) for dm in (memory, lazy)]
            for key in ("images", "scalars", "target", "index", "flight"):
                assert np.array_equal(loaded[0][key].numpy(), loaded[1][key].numpy())
    by_workers = np.concatenate([b["images"].numpy() for b in lazy.val_dataloader()])  # 2 worker processes
    assert np.array_equal(by_workers, memory.val_set.frames.images)
    assert len(list(tmp_path.glob("cloudml-scratch-*"))) == (2 if source == "scratch copy" else 0)
    lazy.teardown()
    assert list(tmp_path.iterdir()) == []  # the scratch copies are deleted
    assert not [t for t in threading.enumerate() if t.name.startswith("cloudml-read")]  # and the readers stopped


def test_set_up_decompresses_each_frame_once_and_lazy_statistics_equal_in_memory(tmp_path, monkeypatch):
    path = write_h5(tmp_path / "slabs.h5", n=3000, flights=5)  # splits span several 1024-row slabs
    rows_read = []
    for module in (cloudml.data.frames, cloudml.data.lazy, cloudml.data.schema):
        def counting(dset, rows, read=module.read_images):
            rows_read.append(len(rows))
            return read(dset, rows)
        monkeypatch.setattr(module, "read_images", counting)
    setups = {}
    for label, budget in (("in memory", 64), ("lazy", 0)):
        rows_read.clear()
        dm = CloudDataModule(str(path), batch_size=16, memory_budget_mb=budget, scratch_dir=tmp_path)
        dm.setup()
        assert sum(rows_read) == len(dm.split.train) + len(dm.split.val), label  # statistics and data: one read
        setups[label] = dm
    memory, lazy = setups["in memory"], setups["lazy"]
    assert not lazy.in_memory and lazy.stats == memory.stats  # summed over the same slabs, in the same order
    every = np.arange(len(memory.train_set))
    assert np.array_equal(lazy.train_set.__getitems__(every)["images"], memory.train_set.frames.images)
    lazy.teardown()


@pytest.mark.parametrize("budget_mb, scratch", [(64, None), (0, "copy"), (0, False)],
                         ids=["in memory", "scratch copy", "compressed chunks"])  # fmt: skip
def test_batches_carry_each_samples_flight_from_the_file_and_minus_one_without_flights(tmp_path, budget_mb, scratch):
    flight = np.random.default_rng(2).integers(0, 6, 200).astype(np.int32)  # interleaved: a sample's flight is not its position's
    with_flights = write_h5(tmp_path / "flights.h5", n=200, flight=flight)
    without = write_h5(tmp_path / "no_flights.h5", n=200, flight=None)
    for path, expected in ((with_flights, flight), (without, np.full(200, -1))):
        dm = CloudDataModule(str(path), split={"kind": "random", "val_fraction": 0.3}, batch_size=16, memory_budget_mb=budget_mb,
                             scratch_dir=tmp_path if scratch else scratch)  # fmt: skip
        dm.setup()
        assert dm.in_memory == (budget_mb > 0)
        seen = []
        for loader in (dm.train_dataloader(), dm.val_dataloader()):
            for batch in loader:
                assert batch["flight"].dtype == torch.int64
                assert np.array_equal(batch["flight"].numpy(), expected[batch["index"].numpy()])
                seen.append(batch["index"].numpy())
        dm.teardown()
        assert len(np.unique(np.concatenate(seen))) >= 200 - 15  # every sample but a dropped last training batch


def test_block_cache_gathers_any_rows_while_holding_few_blocks():
    data = np.random.default_rng(0).normal(size=(103, 2, 3)).astype(np.float32)
    loads = []

    def load(block, out):
        loads.append(block)
        out[:] = data[block * 10 : block * 10 + len(out)]

    cache = BlockCache(len(data), block_rows=10, row_shape=(2, 3), slots=3, load=load)
    rng = np.random.default_rng(1)
    for size in (1, 5, 30, 103):  # up to every block at once: more than the 3 slots
        for _ in range(20):
            keys = rng.integers(0, len(data), size)
            assert np.array_equal(cache.gather(keys), data[keys])
            cache.prefetch(rng.integers(0, 11, 2))  # reservations must never cost a batch its blocks
    assert cache.data.shape == (3, 10, 2, 3)  # never more than 3 blocks held
    loads.clear()
    for _ in range(5):
        cache.gather(np.array([0, 11, 25]))  # blocks 0, 1, 2 stay resident once loaded
    assert sorted(loads) == [0, 1, 2]


def test_shuffled_lazy_epoch_reads_each_block_once_with_prefetching():
    """BatchOrder's windows of blocks + BlockCache.prefetch: every batch right, no block read
    twice in an epoch although the cache holds only 8 of its 40 blocks."""
    data = np.random.default_rng(0).normal(size=(397, 4)).astype(np.float32)
    loads = []

    def load(block, out):
        loads.append(block)
        out[:] = data[block * 10 : block * 10 + len(out)]

    cache = BlockCache(len(data), block_rows=10, row_shape=(4,), slots=8, load=load)
    order = BatchOrder(len(data), 16, shuffle=True, drop_last=False, blocks=np.arange(len(data)) // 10,
                       window=4, prefetch=cache.prefetch)  # fmt: skip
    for epoch in range(3):
        order.set_epoch(epoch)
        loads.clear()
        seen = []
        for batch in order:
            assert np.array_equal(cache.gather(batch), data[batch])
            seen.append(batch)
        assert sorted(np.concatenate(seen).tolist()) == list(range(len(data)))
        assert len(loads) == len(set(loads))  # no block read twice in an epoch
        assert len(loads) == 40 if epoch == 0 else len(loads) >= 40 - 8  # later epochs reuse resident blocks


def test_data_check_cli_reports_a_good_file(tiny_h5):
    good = run_cli("-m", "cloudml.data", str(tiny_h5))
    assert good.returncode == 0, good.stderr
    assert "N = 160" in good.stdout and "flight_00=40" in good.stdout and "120 train / 40 validation" in good.stdout
    assert "OK: this file would train" in good.stdout  # bad files: tests/test_bad_data.py
