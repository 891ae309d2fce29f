"""The data layer: schema checks, splits, train-only normalisation, lazy = in-memory, the data check."""

import h5py
import numpy as np
import pytest

from cloudml.data.datamodule import CloudDataModule
from cloudml.data.schema import read_metadata
from cloudml.data.splits import make_split
from cloudml.errors import CloudMLError
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


def test_lazy_reading_gives_the_same_batches_as_in_memory(tiny_h5):
    loaded = {}
    for budget in (2048, 0):
        dm = CloudDataModule(str(tiny_h5), batch_size=16, memory_budget_mb=budget)
        dm.setup()
        assert dm.in_memory == (budget > 0)
        loaded[budget] = dm.val_set.__getitems__([5, 0, 17, 3])
    for key in ("images", "scalars", "target", "index"):
        assert np.array_equal(loaded[2048][key].numpy(), loaded[0][key].numpy())


BAD_FILES = {
    "missing_key": (dict(target=None), "missing key 'target'"),
    "wrong_rank": (dict(images=np.zeros((60, 8, 8), np.float32)), "key 'images' has shape (60, 8, 8)"),
    "mismatched_n": (dict(target=np.ones(59, np.float32)), "key 'target' has 59 rows, expected 60"),
    "non_numeric": (dict(target=np.array(["a"] * 60, dtype="S1")), "expected a numeric dtype"),
    "nan_target": (dict(target=np.r_[np.nan, np.ones(59)].astype(np.float32)), "1 non-finite values (first at row 0)"),
    "metres": (dict(target=np.linspace(200, 1800, 60).astype(np.float32)), "values in metres?"),
    "constant": (dict(target=np.full(60, 0.7, np.float32)), "is constant (0.7 km)"),
    "nan_scalars": (dict(scalars=np.full((60, 2), np.inf, np.float32)), "key 'scalars' has 120 non-finite"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_gives_a_one_line_error_naming_the_key(tmp_path, case):
    overrides, message = BAD_FILES[case]
    path = write_h5(tmp_path / f"{case}.h5", **overrides)
    with pytest.raises(CloudMLError) as err:
        read_metadata(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_not_hdf5_and_truncated_files_are_refused(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    good = write_h5(tmp_path / "good.h5", n=400)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:3000])
    for path, message in ((text, "not an HDF5 file"), (truncated, "truncated or corrupt"), (tmp_path / "nope.h5", "file not found")):
        with pytest.raises(CloudMLError, match=message):
            read_metadata(path)


def test_split_errors_name_the_problem(tmp_path):
    one_flight = read_metadata(write_h5(tmp_path / "one.h5", flights=1))
    with pytest.raises(CloudMLError, match="needs at least 2 flights, found 1"):
        make_split(one_flight, "flight")
    meta = read_metadata(write_h5(tmp_path / "three.h5"))
    with pytest.raises(CloudMLError, match="val_flights names f9, not in the file's flights"):
        make_split(meta, "flight", val_flights=["f9"])
    with pytest.raises(CloudMLError, match="leaves the training set empty"):
        make_split(meta, "flight", val_flights=["f0", "f1", "f2"])


def test_nan_in_images_is_refused_before_training(tmp_path):
    images = np.zeros((60, 3, 8, 8), np.float32)
    images[7, 1, 2, 3] = np.nan
    dm = CloudDataModule(str(write_h5(tmp_path / "nanimg.h5", images=images)), batch_size=8)
    with pytest.raises(CloudMLError, match="key 'images' has 1 non-finite pixels"):
        dm.setup()


def test_batch_larger_than_training_split_is_refused(tmp_path):
    dm = CloudDataModule(str(write_h5(tmp_path / "small.h5")), batch_size=1000)
    with pytest.raises(CloudMLError, match="data.batch_size=1000: expected 1..40"):
        dm.setup()


def test_data_check_cli_reports_a_good_file_and_refuses_a_bad_one(tiny_h5, tmp_path):
    good = run_cli("-m", "cloudml.data", str(tiny_h5))
    assert good.returncode == 0, good.stderr
    assert "N = 160" in good.stdout and "flight_00=40" in good.stdout and "120 train / 40 validation" in good.stdout
    bad = run_cli("-m", "cloudml.data", str(write_h5(tmp_path / "m.h5", target=np.linspace(100, 900, 60))))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "values in metres?" in bad.stderr and "Traceback" not in bad.stderr
