"""Fashion-MNIST: verified loading, subsets, splits and ``tf.data`` pipelines.

The four IDX files ship with the course under ``data/fashion-mnist/``. Every load checks the
SHA-256 of their decompressed content against the published values and names the file that is
missing, truncated or altered. Nothing here downloads unless explicitly asked to.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import env

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (28, 28, 1)

# SHA-256 of the decompressed IDX files (data/README.md).
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_IDX_MAGIC = {"images": 2051, "labels": 2049}


class DataIntegrityError(RuntimeError):
    """A data file is missing, unreadable, truncated or does not match its published checksum."""


@dataclass(frozen=True)
class Split:
    """Images (uint8, N×28×28) and labels (uint8, N) of one part of the data set."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class FashionMNIST:
    """The training and test splits."""

    train: Split
    test: Split


def default_data_dir() -> Path:
    """The course's bundled data folder, ``<course root>/data/fashion-mnist``."""
    return env.course_root() / "data" / "fashion-mnist"


def read_verified(path: Path, expected_sha256: str) -> bytes:
    """Return the decompressed bytes of a ``.gz`` file after checking their SHA-256.

    Raises :class:`DataIntegrityError` naming ``path`` when the file is missing, is not valid
    gzip (for example truncated), or its content hash differs from ``expected_sha256``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataIntegrityError(f"Data file missing: {path}. See data/README.md to restore it.")
    try:
        with gzip.open(path, "rb") as handle:
            content = handle.read()
    except (OSError, EOFError) as exc:
        raise DataIntegrityError(f"Data file unreadable or truncated: {path} ({exc}). "
                                 f"Restore it (data/README.md).") from exc
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected_sha256:
        raise DataIntegrityError(f"Data file altered: {path} has content SHA-256 {digest}, "
                                 f"expected {expected_sha256}. Restore it (data/README.md).")
    return content


def parse_idx(content: bytes, kind: str, name: str = "<bytes>") -> np.ndarray:
    """Parse an IDX file's bytes (``kind`` is ``"images"`` or ``"labels"``) into a uint8 array."""
    magic = int.from_bytes(content[0:4], "big")
    if magic != _IDX_MAGIC[kind]:
        raise DataIntegrityError(f"{name}: magic number {magic}, expected {_IDX_MAGIC[kind]} "
                                 f"for an IDX {kind} file")
    count = int.from_bytes(content[4:8], "big")
    if kind == "labels":
        return np.frombuffer(content, dtype=np.uint8, offset=8).reshape(count)
    rows, cols = int.from_bytes(content[8:12], "big"), int.from_bytes(content[12:16], "big")
    return np.frombuffer(content, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def _load_split(data_dir: Path, prefix: str) -> Split:
    arrays = {}
    for kind, suffix in (("images", "idx3-ubyte"), ("labels", "idx1-ubyte")):
        name = f"{prefix}-{kind}-{suffix}"
        content = read_verified(data_dir / f"{name}.gz", SHA256[name])
        arrays[kind] = parse_idx(content, kind, name)
    return Split(arrays["images"], arrays["labels"])


def _load_from_keras() -> FashionMNIST:
    """Fallback for a checkout without the files: Keras' copy, held to the same content hashes."""
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    for name, array in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        header = _idx_header(array)
        if hashlib.sha256(header + array.astype(np.uint8).tobytes()).hexdigest() != SHA256[name]:
            raise DataIntegrityError(f"keras.datasets copy of {name} does not match its checksum")
    return FashionMNIST(Split(x_train, y_train), Split(x_test, y_test))


def _idx_header(array: np.ndarray) -> bytes:
    magic = _IDX_MAGIC["images"] if array.ndim == 3 else _IDX_MAGIC["labels"]
    return b"".join(int(v).to_bytes(4, "big") for v in (magic, *array.shape))


def load_fashion_mnist(data_dir: Path | None = None, allow_download: bool = False) -> FashionMNIST:
    """Load and verify the full data set (60,000 training and 10,000 test images, uint8).

    ``data_dir`` defaults to the bundled copy. With ``allow_download=True`` and no files at all,
    Keras' downloadable copy is used instead, verified against the same hashes.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if allow_download and not any(data_dir.glob("*.gz")):
        return _load_from_keras()
    return FashionMNIST(train=_load_split(data_dir, "train"), test=_load_split(data_dir, "t10k"))


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 images (N×28×28) to the models' input: float32 in [0, 1], shape N×28×28×1."""
    return (x.astype(np.float32) / 255.0)[..., np.newaxis]


def _per_class_counts(labels: np.ndarray, n: int) -> np.ndarray:
    """How many of ``n`` examples to take from each class: proportional, summing exactly to ``n``.

    Largest-remainder rounding: every class gets the floor of its share, and the examples left
    over go to the classes with the largest fractional parts (lower class index first on ties).
    For balanced classes the counts differ by at most one.
    """
    available = np.bincount(labels, minlength=NUM_CLASSES)
    share = n * available / available.sum()
    counts = np.floor(share).astype(int)
    leftover = n - int(counts.sum())
    order = np.lexsort((np.arange(NUM_CLASSES), -(share - counts)))
    counts[order[:leftover]] += 1
    return np.minimum(counts, available)


def stratified_subset(split: Split, n: int | None, seed: int = env.DEFAULT_SEED) -> Split:
    """Return exactly ``n`` examples with the class balance of ``split`` (all of it if ``n`` is None).

    Per-class counts are proportional to the classes' shares and sum to ``n`` (for a balanced
    split they differ by at most one); the examples keep their original order.
    """
    if n is None or n >= len(split):
        return split
    if n < NUM_CLASSES:
        raise ValueError(f"A stratified subset needs at least {NUM_CLASSES} examples, got {n}")
    rng = np.random.default_rng(seed)
    counts = _per_class_counts(split.y, n)
    indices = [rng.choice(np.flatnonzero(split.y == label), size=int(take), replace=False)
               for label, take in enumerate(counts)]
    chosen = np.sort(np.concatenate(indices))
    return Split(split.x[chosen], split.y[chosen])


def train_val_split(split: Split, val_fraction: float = 0.1,
                    seed: int = env.DEFAULT_SEED) -> tuple[Split, Split]:
    """Split into training and validation parts, stratified by class, without overlap."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    val_idx = []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(split.y == label)
        val_idx.append(rng.choice(members, size=round(len(members) * val_fraction), replace=False))
    val_mask = np.zeros(len(split), dtype=bool)
    val_mask[np.concatenate(val_idx)] = True
    return Split(split.x[~val_mask], split.y[~val_mask]), Split(split.x[val_mask], split.y[val_mask])


@dataclass(frozen=True)
class CourseSplits:
    """The course's fixed protocol: train (54,000), validation (6,000), test (10,000).

    Every choice (epochs, sparsity, clusters, temperature, thresholds) is made on ``validation``;
    ``test`` gives each final model's number once.
    """

    train: Split
    validation: Split
    test: Split


VALIDATION_FRACTION = 0.1


def course_splits(fashion: FashionMNIST | None = None, seed: int = env.DEFAULT_SEED) -> CourseSplits:
    """Split the 60,000 training images once, seeded and stratified, into 54,000 train and
    6,000 validation images; the 10,000 test images stay as they are.

    Every notebook calls this, so all of them train, choose and test on the same images.
    """
    fashion = fashion or load_fashion_mnist()
    train, validation = train_val_split(fashion.train, VALIDATION_FRACTION, seed)
    return CourseSplits(train, validation, fashion.test)


def make_dataset(split: Split, batch_size: int = 128, shuffle: bool = False,
                 seed: int = env.DEFAULT_SEED):
    """A ``tf.data.Dataset`` of (float images N×28×28×1, int labels), batched and prefetched."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((to_float(split.x), split.y.astype(np.int32)))
    if shuffle:
        dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
