import gzip

import numpy as np
import pytest

from helpers import data

from .conftest import write_gz


def test_bundled_data_loads_and_verifies():
    fashion = data.load_fashion_mnist()
    assert fashion.train.x.shape == (60_000, 28, 28) and fashion.test.x.shape == (10_000, 28, 28)
    assert fashion.train.x.dtype == np.uint8 and set(np.unique(fashion.test.y)) == set(range(10))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(data.DataIntegrityError, match="missing: .*train-images-idx3-ubyte.gz"):
        data.load_fashion_mnist(tmp_path)


def test_truncated_file_is_named(tmp_path):
    path = write_gz(tmp_path / "file.gz", b"x" * 10_000)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(data.DataIntegrityError, match="truncated: .*file.gz"):
        data.read_verified(path, "0" * 64)


def test_altered_file_is_named(tmp_path):
    path = write_gz(tmp_path / "file.gz", b"changed content")
    with pytest.raises(data.DataIntegrityError, match="altered: .*file.gz"):
        data.read_verified(path, "0" * 64)


def test_altered_copy_of_real_file_is_refused(tmp_path):
    name = "t10k-labels-idx1-ubyte"
    content = bytearray(gzip.decompress((data.default_data_dir() / f"{name}.gz").read_bytes()))
    content[100] ^= 1                                   # one label changed
    write_gz(tmp_path / f"{name}.gz", bytes(content))
    with pytest.raises(data.DataIntegrityError, match=name):
        data.read_verified(tmp_path / f"{name}.gz", data.SHA256[name])


def test_parse_idx_checks_magic():
    header = (2049).to_bytes(4, "big") + (2).to_bytes(4, "big")
    assert data.parse_idx(header + bytes([3, 4]), "labels").tolist() == [3, 4]
    with pytest.raises(data.DataIntegrityError, match="magic number"):
        data.parse_idx(header + bytes([3, 4]), "images", "x")


def _toy_split(n_per_class=20):
    y = np.repeat(np.arange(10, dtype=np.uint8), n_per_class)
    x = np.arange(len(y), dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    return data.Split(x, y)


def test_stratified_subset_keeps_balance():
    subset = data.stratified_subset(_toy_split(), 50, seed=0)
    assert len(subset) == 50 and np.bincount(subset.y).tolist() == [5] * 10
    assert data.stratified_subset(_toy_split(), None) is not None
    with pytest.raises(ValueError):
        data.stratified_subset(_toy_split(), 5)


@pytest.mark.parametrize("n", [10, 11, 35, 45, 99, 101, 199])
def test_stratified_subset_returns_exactly_n_with_every_class(n):
    subset = data.stratified_subset(_toy_split(), n, seed=1)
    counts = np.bincount(subset.y, minlength=10)
    assert len(subset) == n and counts.sum() == n          # 45 used to give 40, 35 lost class 9
    assert counts.max() - counts.min() <= 1
    assert len(set(subset.x[:, 0, 0].tolist())) == n      # no example taken twice


def test_stratified_subset_of_an_unbalanced_split_is_proportional():
    y = np.repeat(np.arange(10, dtype=np.uint8), [40, 30, 20, 10, 10, 10, 10, 10, 10, 10])
    split = data.Split(np.zeros((len(y), 28, 28), np.uint8), y)
    counts = np.bincount(data.stratified_subset(split, 80, seed=0).y, minlength=10)
    assert counts.sum() == 80 and counts[0] == 20 and counts[1] == 15 and counts[9] == 5


def test_course_splits_are_fixed_disjoint_and_stratified():
    splits = data.course_splits()
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (54_000, 6_000, 10_000)
    assert np.bincount(splits.validation.y).tolist() == [600] * 10
    again = data.course_splits()
    np.testing.assert_array_equal(again.validation.x, splits.validation.x)   # the same every time
    train_images = {image.tobytes() for image in splits.train.x}
    assert not any(image.tobytes() in train_images for image in splits.validation.x)


def test_train_val_split_is_disjoint_and_stratified():
    split = _toy_split()
    train, val = data.train_val_split(split, 0.25, seed=0)
    assert len(train) + len(val) == len(split)
    assert np.bincount(val.y).tolist() == [5] * 10
    assert not set(train.x[:, 0, 0].tolist()) & set(val.x[:, 0, 0].tolist())
    with pytest.raises(ValueError):
        data.train_val_split(split, 1.5)


def test_to_float_and_dataset():
    split = _toy_split(2)
    x = data.to_float(split.x)
    assert x.shape == (20, 28, 28, 1) and x.dtype == np.float32 and x.max() <= 1.0
    images, labels = next(iter(data.make_dataset(split, batch_size=8)))
    assert tuple(images.shape) == (8, 28, 28, 1) and labels.dtype.name == "int32"
