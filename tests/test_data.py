"""Datasets: real MedMNIST files, md5 checks, clear errors, the synthetic set, reference sets."""

import numpy as np
import pytest
import torch
from conftest import needs_real_data

from bench.compute import data
from bench.core.errors import DataError, UnknownNameError


@needs_real_data
@pytest.mark.parametrize("flag, sizes, channels, classes", [
    ("breastmnist", (546, 78, 156), 1, 2),
    ("pneumoniamnist", (4708, 524, 624), 1, 2),
    ("retinamnist", (1080, 120, 400), 3, 5),
    ("bloodmnist", (11959, 1712, 3421), 3, 8),
])
def test_real_files_load_with_official_splits(flag, sizes, channels, classes):
    ds = data.load(flag)
    assert (len(ds.train), len(ds.val), len(ds.test)) == sizes
    assert ds.train.x.shape[1:] == (channels, 28, 28)
    assert ds.info.n_classes == classes
    assert ds.md5 == data.expected_md5(flag, 28)
    assert -1.0 <= float(ds.train.x.min()) and float(ds.train.x.max()) <= 1.0
    assert int(ds.train.y.max()) == classes - 1


@pytest.fixture
def real_root():
    return data.data_root()


@pytest.fixture
def private_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XPRUNE_DATA_ROOT", str(tmp_path))
    data.load.cache_clear()
    yield tmp_path
    data.load.cache_clear()


def test_missing_file_is_a_one_line_data_error(private_root):
    with pytest.raises(DataError, match="breastmnist: data file .*breastmnist.npz not found"):
        data.load("breastmnist")


@needs_real_data
def test_truncated_file_fails_the_md5_check(real_root, private_root):
    blob = (real_root / "breastmnist.npz").read_bytes()
    (private_root / "breastmnist.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="md5 mismatch .*corrupt, truncated"):
        data.load("breastmnist")


def test_unknown_dataset_suggests_close_names():
    with pytest.raises(UnknownNameError, match="did you mean breastmnist"):
        data.info("breastmnst")


def test_synthetic_is_deterministic_and_balanced_enough():
    a, b = data._synthetic(28), data._synthetic(28)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert (len(a.train), len(a.val), len(a.test)) == (600, 150, 300)
    counts = torch.bincount(a.train.y, minlength=3)
    assert int(counts.min()) > 150
    assert a.info.synthetic and a.md5 is None


def test_reference_batch_is_class_balanced_seeded_and_fixed():
    ds = data.load("synthetic")
    first = data.reference_batch(ds, 10, seed=0)
    again = data.reference_batch(ds, 10, seed=0)
    other = data.reference_batch(ds, 10, seed=1)
    assert torch.bincount(first.y).tolist() == [10, 10, 10]
    assert torch.equal(first.x, again.x)
    assert not torch.equal(first.x, other.x)


def test_multi_label_reference_batch_covers_every_label():
    y = torch.tensor(np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]]),
                     dtype=torch.float32)
    split = data.Split(torch.zeros(5, 1, 28, 28), y)
    ds = data.Dataset(data.DatasetInfo("x", "multi-label, binary-class", 1, 3), split, split,
                      split, None)
    batch = data.reference_batch(ds, 1, seed=0)
    assert batch.y.sum(0).min() >= 1 and len(batch) <= 3
