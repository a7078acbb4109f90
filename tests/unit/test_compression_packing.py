"""Packed size and entropy of compressed kernels (helpers.compression, notebook 07)."""

import math

import keras
import numpy as np
import pytest

from helpers import bench, compression, litert


def test_int8_kernel_packs_with_a_codebook_per_channel_and_relative_positions():
    kernel = np.zeros((4, 10), np.int8)
    kernel[0, :3] = [5, -5, 7]          # 3 distinct non-zero values in channel 0
    kernel[1, :2] = [9, 9]              # 1 in channel 1; channels 2 and 3 are all zeros
    packed = compression.pack_kernel(kernel)
    assert (packed.weights, packed.nonzeros) == (40, 5)
    assert packed.index_bits == 2                       # ceil(log2(3 + 1)): values and the filler's 0
    assert packed.codebook_bits == 8 * (3 + 1)          # int8 entries, per channel
    # Zeros skipped before each entry: 0, 0, 0, 7, 0. With 1-bit gaps (skip at most 1) the run of 7
    # needs 3 fillers: 8 entries of 3 bits; 2-bit gaps: 1 filler, 6 x 4 bits; 3-bit: 5 x 5 bits.
    assert (packed.gap_bits, packed.fillers) == (1, 3)  # the smallest (ties: the narrowest)
    assert packed.total_bits == 8 * 3 + 32 and packed.bytes == 7
    wide = compression.pack_kernel(np.concatenate([kernel.ravel(), np.zeros(200, np.int8), [4]]))
    assert wide.gap_bits >= 5 and wide.fillers <= 7     # a long run: wider gaps beat fillers
    narrow = compression.pack_kernel(kernel, max_gap_bits=1)
    assert narrow.gap_bits == 1


def test_fillers_follow_the_gap_width():
    kernel = np.array([0] * 8 + [1] + [0] * 16 + [2], np.float32)
    one_filler = compression.pack_kernel(kernel, max_gap_bits=3)      # skips of 8 and 16 zeros
    assert (one_filler.gap_bits, one_filler.fillers) == (3, 3)        # 8 // 8 + 16 // 8
    assert compression.pack_kernel(kernel).fillers == 0               # 5 bits skip up to 31


def test_float_kernel_has_one_codebook_and_no_positions_without_zeros():
    values = np.linspace(-1, 1, 16, dtype=np.float32)
    kernel = np.tile(values, 8).reshape(8, 16)          # 16 distinct values, no zeros
    packed = compression.pack_kernel(kernel)
    assert packed.index_bits == 4 and packed.codebook_bits == 16 * 32
    assert (packed.gap_bits, packed.fillers, packed.nonzeros) == (0, 0, 128)
    assert packed.total_bits == 128 * 4 + 16 * 32
    seventeen = np.append(kernel.ravel(), np.float32(3.0))
    assert compression.pack_kernel(seventeen).index_bits == 5
    single = np.where(np.arange(20) % 4 == 0, 0.5, 0.0).astype(np.float32)
    assert compression.pack_kernel(single).index_bits == 1          # the value, or a filler's zero


def test_entropy_of_known_distributions():
    assert compression.entropy_bits(np.repeat(np.arange(8), 5)) == pytest.approx(3.0)
    assert compression.entropy_bits(np.full(50, 0.25)) == 0.0
    sparse = np.array([0] * 90 + [3] * 10, np.int8)
    expected = -(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1))
    assert compression.entropy_bits(sparse) == pytest.approx(expected)
    rng = np.random.default_rng(0)                      # i.i.d. values: no code beats the entropy
    iid = rng.choice(np.arange(1, 8), size=(64, 400)).astype(np.int8)
    iid[rng.random(iid.shape) < 0.9] = 0
    assert compression.entropy_bits(iid) < compression.pack_kernel(iid).total_bits / iid.size


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A float32 reference and a copy whose dense kernel is 90% zeros and holds 4 values."""
    folder = tmp_path_factory.mktemp("packing")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.Flatten(name="flat"), keras.layers.Dense(20, name="dense")])
    reference = litert.convert_to_file(model, "float32", folder / "reference.tflite")
    rng = np.random.default_rng(0)
    kernel = rng.choice([-0.5, -0.1, 0.2, 0.7], size=(64, 20)).astype(np.float32)
    kernel[rng.random(kernel.shape) < 0.9] = 0.0
    model.get_layer("dense").set_weights([kernel, np.zeros(20, np.float32)])
    compressed = litert.convert_to_file(model, "float32", folder / "compressed.tflite")
    calibration = rng.random((16, 6, 6, 1), dtype=np.float32)
    int8 = litert.convert_to_file(model, "int8", folder / "int8.tflite", calibration)
    return reference, compressed, int8, kernel


def test_packed_row_replaces_only_the_named_kernels(models):
    reference, compressed, _, kernel = models
    row = compression.packed_row(compressed, ["dense"], reference)
    stored = compression.layer_kernels(compressed, "dense")
    expected = bench.size_on_disk(compressed) - stored.nbytes + compression.pack_kernel(stored).bytes
    assert row["packed KB"] == pytest.approx(expected / 1024)
    assert row["packed ratio"] == pytest.approx(bench.size_on_disk(reference) / expected)
    assert row["entropy (bits/weight)"] == pytest.approx(compression.entropy_bits(kernel))
    assert row["entropy bound KB"] < row["packed KB"] < bench.size_on_disk(compressed) / 1024
    packed_kernel = compression.pack_kernel(stored)                      # Han et al.'s ratio
    assert row["kernels packed ratio"] == pytest.approx(32 * stored.size / packed_kernel.total_bits, rel=0.01)
    assert row["kernels entropy ratio"] == pytest.approx(32 / compression.entropy_bits(kernel))
    with pytest.raises(ValueError):
        compression.packed_row(compressed, [], reference)


def test_packed_row_of_an_int8_file_uses_the_stored_integers(models):
    reference, _, int8, kernel = models
    stored = compression.layer_kernels(int8, "dense")
    assert stored.dtype == np.int8 and compression.sparsity(stored) == pytest.approx(np.mean(kernel == 0))
    packed = compression.pack_kernel(stored)
    assert packed.index_bits == 3                      # at most 4 values per channel, and 0
    row = compression.packed_row(int8, ["dense"], reference)
    assert row["packed KB"] == pytest.approx(
        (bench.size_on_disk(int8) - stored.size + packed.bytes) / 1024)
    both = compression.packed_row(int8, ["dense", "conv"], reference)
    assert both["packed KB"] != row["packed KB"]       # the conv kernel is counted too
