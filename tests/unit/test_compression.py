import gzip

import keras
import numpy as np
import pytest

from helpers import compression, data, litert, models


@pytest.fixture(scope="module")
def sparse_model_path(tmp_path_factory):
    """A tiny CNN whose dense kernel is half zeros in a 2:4 pattern and holds 3 distinct values."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(8, name="dense")])
    kernel = np.tile(np.array([0.0, 0.0, 0.5, -0.5], np.float32), (144 // 4) * 8).reshape(8, 144).T
    model.get_layer("dense").set_weights([kernel, np.zeros(8, np.float32)])
    return litert.convert_to_file(model, "float32", tmp_path_factory.mktemp("c") / "m.tflite")


def test_kernels_are_read_from_the_file(sparse_model_path):
    kernels = compression.tflite_kernels(sparse_model_path)
    assert len(kernels) == 2
    dense = compression.layer_kernels(sparse_model_path, "dense")
    assert dense.shape == (8, 144)                       # LiteRT layout: [out, in]
    assert compression.sparsity(dense) == 0.5
    assert compression.distinct_values(dense) == 3
    assert compression.distinct_values_per_channel(dense) == 3
    assert compression.m_by_n_fraction(dense, 2, 4) == 1.0
    with pytest.raises(KeyError):
        compression.layer_kernels(sparse_model_path, "no_such_layer")


def test_table_and_operator_list(sparse_model_path, tmp_path):
    table = compression.kernel_table(sparse_model_path)
    dense = next(row for name, row in table.items() if "dense" in name)
    conv = next(row for name, row in table.items() if "conv" in name)
    assert dense == {"shape": (8, 144), "dtype": "float32", "weights": 1152, "sparsity": 0.5,
                     "distinct values": 3}
    assert conv["shape"] == (4, 3, 3, 1) and conv["weights"] == 36 and conv["sparsity"] == 0.0
    ops = compression.op_types(sparse_model_path)
    assert ops[0] == ("CONV_2D", "float32") and ops[-1] == ("FULLY_CONNECTED", "float32")
    # The same model in int8: every weighted operator runs on int8 inputs.
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(8)])
    calibration = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    int8 = litert.convert_to_file(model, "int8", tmp_path / "int8.tflite", calibration)
    weighted = [dtype for op, dtype in compression.op_types(int8) if op in compression.WEIGHTED_OPS]
    assert weighted == ["int8", "int8"]
    assert {row["dtype"] for row in compression.kernel_table(int8).values()} == {"int8"}


def test_layer_names_as_keras_3_and_tf_mot_write_them(monkeypatch):
    ops = [("m/conv1_1/convolution", "m/conv1_1/Relu", np.zeros(1)),
           ("m/quant_dense1/MatMul;m/quant_dense1/Fake", "m/quant_dense1/Relu", np.ones(1)),
           ("m/dense11/MatMul", "m/dense11/BiasAdd", np.full(1, 2.0))]
    monkeypatch.setattr(compression, "_weighted_ops", lambda path: ops)
    assert compression.layer_kernels("x", "conv1")[0] == 0
    assert compression.layer_kernels("x", "dense1")[0] == 1       # not dense11
    with pytest.raises(KeyError):
        compression.layer_kernels("x", "conv")


def test_generic_kernel_names_are_found_by_the_operator_output(monkeypatch):
    """TensorFlow 2.20's converter names kernels `arith.constant*` (seen in Colab's stack)."""
    ops = [("m/conv1/Conv2D", "m/conv1/Relu;m/conv1/Conv2D", np.zeros(1)),
           ("arith.constant", "m/conv2/Relu;m/conv2/Conv2D", np.ones(1)),
           ("arith.constant2", "m/dense1/MatMul;m/dense1/Relu", np.full(1, 2.0))]
    monkeypatch.setattr(compression, "_weighted_ops", lambda path: ops)
    assert compression.layer_kernels("x", "conv2")[0] == 1
    assert compression.layer_kernels("x", "dense1")[0] == 2
    assert compression.layer_kernels("x", "conv1")[0] == 0
    assert list(compression.tflite_kernels("x")) == ["m/conv1/Conv2D", "arith.constant", "arith.constant2"]


def test_m_by_n_detects_a_broken_pattern():
    weights = np.array([[0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 1.0, 1.0]])
    assert compression.m_by_n_fraction(weights, 2, 4) == 0.5
    with pytest.raises(ValueError, match="multiple of 4"):
        compression.m_by_n_fraction(np.ones((2, 6)), 2, 4)


def test_near_zero_share():
    assert compression.near_zero_share(np.array([0, 1, -1, 2], np.int8)) == 0.75
    assert compression.near_zero_share(np.array([0.0, 1.0, -1.0, 2.0])) == 0.25
    assert compression.near_zero_share(np.array([0, 1, -1, 2, -3], np.int8), steps=2) == 0.8
    assert compression.near_zero_share(np.array([0, 1, -128], np.int8), steps=0) == pytest.approx(1 / 3)


def test_per_channel_distinct_values():
    weights = np.array([[1.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    assert compression.distinct_values(weights) == 5
    assert compression.distinct_values_per_channel(weights) == 3


def _tiny_dense_model(units: int, seed: int):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(units, name="hidden"), keras.layers.Dense(8, name="out")])


def test_row_measures_the_model_against_a_different_reference(tmp_path):
    model, reference_model = _tiny_dense_model(16, seed=1), _tiny_dense_model(256, seed=2)
    path = litert.convert_to_file(model, "float32", tmp_path / "model.tflite")
    reference = litert.convert_to_file(reference_model, "float32", tmp_path / "reference.tflite")
    images = np.random.default_rng(0).random((45, 8, 8, 1), dtype=np.float32)
    predicted = model.predict(images, verbose=0).argmax(1)
    labels = predicted.copy()
    labels[::5] = (labels[::5] + 1) % 8                 # 9 wrong
    labels[1::5] = (labels[1::5] + 2) % 8               # 9 more: 27 of 45 right
    reference_accuracy = float(np.mean(reference_model.predict(images, verbose=0).argmax(1) == labels))
    assert reference_accuracy != pytest.approx(0.6)     # so that scoring the wrong file shows

    row = compression.tflite_row(path, reference, images, labels)   # 45 rows: one padded batch
    size, reference_size = path.stat().st_size, reference.stat().st_size
    packed = len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
    reference_packed = len(gzip.compress(reference.read_bytes(), compresslevel=9, mtime=0))
    assert row["KB"] == pytest.approx(size / 1024)
    assert row["gzip KB"] == pytest.approx(packed / 1024)
    assert row["size ratio"] == pytest.approx(reference_size / size)       # times smaller
    assert row["gzip ratio"] == pytest.approx(reference_packed / packed)
    assert row["size ratio"] > 8                                            # 256 vs 16 units
    assert row["accuracy"] == pytest.approx(0.6)
    assert set(row) == {"KB", "gzip KB", "size ratio", "gzip ratio", "accuracy"}


def test_float16_kernels_are_read_as_stored(tmp_path):
    model = _tiny_dense_model(16, seed=1)
    path = litert.convert_to_file(model, "float16", tmp_path / "f16.tflite")
    kernels = compression.tflite_kernels(path)
    assert {w.dtype.name for w in kernels.values()} == {"float16"}
    hidden = compression.layer_kernels(path, "hidden")
    np.testing.assert_array_equal(hidden, model.get_layer("hidden").kernel.numpy().T.astype(np.float16))


def test_wrap_layers_copies_and_checks_names():
    keras.utils.set_random_seed(0)
    model = models.build_baseline_cnn(keras)
    seen = []
    wrapped = compression.wrap_layers(keras, model, ["dense1"], lambda layer: seen.append(layer.name)
                                      or layer)
    assert seen == ["dense1"]
    np.testing.assert_array_equal(wrapped.get_layer("dense1").kernel.numpy(),
                                  model.get_layer("dense1").kernel.numpy())
    wrapped.get_layer("dense1").kernel.assign(np.zeros((1600, 128), np.float32))
    assert np.abs(model.get_layer("dense1").kernel.numpy()).sum() > 0   # original untouched
    with pytest.raises(KeyError, match="no_such_layer"):
        compression.wrap_layers(keras, model, ["no_such_layer"], lambda layer: layer)


def test_fine_tune_is_seeded():
    split = data.Split(np.random.default_rng(0).integers(0, 255, (64, 28, 28), dtype=np.uint8),
                       (np.arange(64) % 10).astype(np.uint8))
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(1)
        model = models.build_baseline_cnn(keras)
        history = models.fine_tune(model, keras, split, epochs=1, learning_rate=1e-3, seed=3)
        runs.append((history.history["loss"][-1], model.get_layer("probs").kernel.numpy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
