"""Bad data files: each is refused by both `python -m cloudml.data PATH` and `python train.py
data.path=PATH` with exit code 2 and one line on stderr that names the file, the key or
value, and what was expected; nothing already written changes. A file over the memory
budget is not bad: it trains, read lazily."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf

from cloudml.data.schema import read_metadata
from cloudml.data.splits import make_split
from cloudml.errors import CloudMLError
from cloudml.training.guard import write_stop
from cloudml.training.resume import JobDirRefused, job_state
from conftest import REPO, run_cli, write_h5

# Model overrides that keep the runs that do train to a few seconds.
SMALL_MODEL = ["model.dim=16", "model.channels=[8,16]", "model.layers=1", "trainer.max_epochs=1", "data.batch_size=8"]


def _with_attr(path, **attrs):
    with h5py.File(path, "a") as f:
        f.attrs.update(attrs)
    return path


def _corrupt_chunks(path):
    """A gzip-chunked file whose image chunks are overwritten with garbage: it opens, reading fails."""
    images = np.random.default_rng(0).normal(size=(60, 3, 8, 8)).astype(np.float32)
    write_h5(path, images=None)
    with h5py.File(path, "a") as f:
        f.create_dataset("images", data=images, chunks=(4, 3, 8, 8), compression="gzip")
        spans = [f["images"].id.get_chunk_info(i) for i in range(f["images"].id.get_num_chunks())]
    raw = bytearray(path.read_bytes())
    for chunk in spans:
        raw[chunk.byte_offset : chunk.byte_offset + chunk.size] = b"\xff" * chunk.size
    path.write_bytes(bytes(raw))
    return path


def _truncated(path):
    good = write_h5(path.with_name("whole.h5"), n=400)
    path.write_bytes(good.read_bytes()[:3000])
    return path


def _nan_images(path):
    images = np.random.default_rng(0).normal(size=(60, 3, 8, 8)).astype(np.float32)
    images[7, 1, 2, 3] = np.nan
    return write_h5(path, images=images)


# case -> (make the file at `path`, text the message must hold, extra train.py overrides, extra data-check args)
CASES = {
    "missing_file": (lambda p: p, "file not found (expected an HDF5 file of samples: images, target and optionally scalars, flight, time)", [], []),
    "not_hdf5": (lambda p: p.write_text("flight,target\n") and p, "not an HDF5 file (no HDF5 signature)", [], []),
    "truncated_hdf5": (_truncated, "cannot be read as HDF5, truncated or corrupt", [], []),
    "corrupt_hdf5": (_corrupt_chunks, "key 'images' cannot be read, truncated or corrupt", [], []),
    "missing_key": (lambda p: write_h5(p, target=None), "missing key 'target' (cloud base height, km); found: flight, images, scalars, time", [], []),
    "wrong_rank": (lambda p: write_h5(p, images=np.zeros((60, 8, 8), np.float32)), "key 'images' has shape (60, 8, 8), expected (N, T, H, W) or (N, T, C, H, W)", [], []),
    "mismatched_n": (lambda p: write_h5(p, target=np.linspace(0.2, 1.8, 59)), "key 'target' has 59 rows, expected 60 like 'images'", [], []),
    "non_numeric": (lambda p: write_h5(p, target=np.array(["1.2"] * 60, dtype="S3")), "key 'target' has dtype |S3, expected a numeric dtype", [], []),
    "nonfinite_target": (lambda p: write_h5(p, target=np.r_[np.linspace(0.2, 1.8, 57), np.nan, 1.0, np.inf]), "key 'target' has 2 non-finite values (first at row 57), expected finite km", [], []),
    "nan_images": (_nan_images, "key 'images' has 1 non-finite pixels", [], []),
    "nan_images_lazy": (_nan_images, "key 'images' has 1 non-finite pixels", ["data.memory_budget_mb=0"], []),
    "corrupt_hdf5_lazy": (_corrupt_chunks, "key 'images' cannot be read, truncated or corrupt", ["data.memory_budget_mb=0"], []),
    "inf_scalars": (lambda p: write_h5(p, scalars=np.where(np.arange(120).reshape(60, 2) == 11, np.inf, 0.5)), "key 'scalars' has 1 non-finite values (first at row 5), expected finite numbers", [], []),
    "target_in_metres": (lambda p: write_h5(p, target=np.linspace(200, 1800, 60)), "key 'target' ranges 200..1800, expected km within -0.5..20 (values in metres? divide by 1000)", [], []),
    "constant_target": (lambda p: write_h5(p, target=np.full(60, 0.7)), "key 'target' is constant (0.7 km): its variance is 0", [], []),
    "one_flight": (lambda p: write_h5(p, flights=1), "the 'flight' split needs at least 2 flights, found 1 (f0); use data.split.kind=random", [], []),
    # The file names its default validation flights (attribute), as data.split.val_flights would.
    "unknown_validation_flight": (lambda p: _with_attr(write_h5(p), default_val_flights=["f9"]), "the file's default_val_flights attribute names f9, not in the file's flights (f0, f1, f2)", [], []),
    "empty_training_split": (lambda p: _with_attr(write_h5(p), default_val_flights=["f0", "f1", "f2"]), "the 'flight' split leaves the training set empty", [], []),
    "empty_validation_split": (lambda p: write_h5(p, time=np.zeros(60)), "the 'time' split leaves the validation set empty", ["data.split.kind=time"], ["--split", "time"]),
}  # fmt: skip


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def tree_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(result, prog, *texts):
    """The CLI failed the way a user should see it: exit 2, one line naming what is wrong."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), result.stderr
    for text in texts:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """case -> (file, its digest before, data-check result, train.py result, train.py run dir).

    Both CLIs run for every case, two cases at a time: train.py spends ~3.5 s importing torch
    and Lightning before it reads the file, on one core."""
    root = tmp_path_factory.mktemp("bad_data")
    (root / "tmp").mkdir()  # where lazy reading would leave scratch copies
    env = {**os.environ, "CLOUDML_CACHE": str(root / "cache"), "TMPDIR": str(root / "tmp")}

    def run(case):
        make, _, train_overrides, check_args = CASES[case]
        path = make(root / f"{case}.h5")
        before, run_dir = digest(path), root / f"run_{case}"
        cli = lambda *args: subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        check = cli("-m", "cloudml.data", str(path), *check_args)
        train = cli("train.py", f"data.path={path}", f"hydra.run.dir={run_dir}", *SMALL_MODEL, *train_overrides)
        return path, before, check, train, run_dir

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(CASES, pool.map(run, CASES)))
    assert list((root / "tmp").glob("cloudml-scratch-*")) == []  # a refused lazy set-up deletes its copies
    return results


@pytest.mark.parametrize("case", CASES)
def test_bad_file_is_refused_by_the_data_check_and_by_train_py_in_one_line(refusals, case):
    path, before, check, train, run_dir = refusals[case]
    message = CASES[case][1]
    one_line_error(check, "python -m cloudml.data", str(path), message)
    line = one_line_error(train, "train.py", str(path), message)
    assert digest(path) == before  # the data file is only read (and a missing one is not created)
    assert {p.name for p in run_dir.iterdir()} <= {".hydra", "identity.json", "summary.json", "train.log"}  # nothing trained
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and f"train.py: error: {summary['error']}" == line


@pytest.fixture(scope="module")
def lazy_run(tmp_path_factory, tiny_h5):
    """A finished run on a file (0.47 MB of frames) about 47 times its memory budget (0.01 MB)."""
    root = tmp_path_factory.mktemp("lazy")
    (root / "tmp").mkdir()
    result = run_cli("train.py", f"data.path={tiny_h5}", "data.memory_budget_mb=0.01", f"hydra.run.dir={root / 'run'}",
                     *SMALL_MODEL, "trainer.max_epochs=2", env={"CLOUDML_CACHE": str(root / "cache"), "TMPDIR": str(root / "tmp")})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((root / "tmp").glob("cloudml-*")) == []  # lazy reading's scratch copies are gone with the run
    return root / "run"


def test_file_over_the_memory_budget_trains_read_lazily(lazy_run):
    assert json.loads((lazy_run / "data.json").read_text())["in_memory"] is False
    summary = json.loads((lazy_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    assert np.isfinite(summary["final"]["val_r2"])


def test_bad_file_leaves_an_existing_run_directory_byte_identical(tmp_path, lazy_run, tiny_h5):
    """`python train.py data.path=BAD` into the directory of a finished run (the default run
    directory does not depend on data.path) is refused; Hydra's .hydra/ record is put back."""
    run_dir, bad = tmp_path / "run", write_h5(tmp_path / "metres.h5", target=np.linspace(200, 1800, 60))
    shutil.copytree(lazy_run, run_dir)
    before = tree_bytes(run_dir)
    result = run_cli("train.py", f"data.path={bad}", "data.memory_budget_mb=0.01", f"hydra.run.dir={run_dir}",
                     *SMALL_MODEL, "trainer.max_epochs=2")  # fmt: skip
    one_line_error(result, "train.py", f"{run_dir}: holds a different run (data.path: '{tiny_h5}' -> '{bad}')")
    assert tree_bytes(run_dir) == before


def test_run_that_failed_on_a_bad_file_gives_way_to_the_fixed_run(tmp_path):
    """The same directory (data.path is not part of its name) trains once the file is fixed; a
    run that trained is never replaced."""
    cfg = lambda path: OmegaConf.create({"seed": 0, "data": {"path": path}, "trainer": {"max_epochs": 1}})
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    assert job_state(run_dir, cfg("metres.h5")) == "new"
    write_stop(run_dir, cfg("metres.h5"), CloudMLError("metres.h5: key 'target' ranges 200..1800, ..."))
    assert job_state(run_dir, cfg("km.h5")) == "new"
    assert json.loads((run_dir / "identity.json").read_text())["data"]["path"] == "km.h5"
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"trained")
    with pytest.raises(JobDirRefused, match="holds a different run"):
        job_state(run_dir, cfg("metres.h5"))


def test_split_errors_name_the_problem(tmp_path):
    """The same checks through the Python API, with the split given as arguments (data.split.*)."""
    meta = read_metadata(write_h5(tmp_path / "three.h5"))
    with pytest.raises(CloudMLError, match="val_flights names f9, not in the file's flights"):
        make_split(meta, "flight", val_flights=["f9"])
    with pytest.raises(CloudMLError, match="leaves the training set empty"):
        make_split(meta, "flight", val_flights=["f0", "f1", "f2"])
    with pytest.raises(CloudMLError, match="data.split.fold=3: expected 0..2"):
        make_split(meta, "cv", fold=3)
    with pytest.raises(CloudMLError, match="data.split.kind='blocks': expected one of flight, random, cv, time"):
        make_split(meta, "blocks")
