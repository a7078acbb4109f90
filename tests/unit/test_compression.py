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


def test_table_and_operator_list(sparse_model_path):
    table = compression.kernel_table(sparse_model_path)
    assert {row["weights"] for row in table.values()} == {36, 1152}
    ops = [op for op, _ in compression.op_types(sparse_model_path)]
    assert "CONV_2D" in ops and "FULLY_CONNECTED" in ops


def test_layer_names_as_keras_3_and_tf_mot_write_them(monkeypatch):
    names = {"m/conv1_1/convolution": np.zeros(1), "m/quant_dense1/MatMul;m/quant_dense1/Fake": np.ones(1),
             "m/dense11/MatMul": np.full(1, 2.0)}
    monkeypatch.setattr(compression, "tflite_kernels", lambda path: names)
    assert compression.layer_kernels("x", "conv1")[0] == 0
    assert compression.layer_kernels("x", "dense1")[0] == 1       # not dense11
    with pytest.raises(KeyError):
        compression.layer_kernels("x", "conv")


def test_m_by_n_detects_a_broken_pattern():
    weights = np.array([[0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 1.0, 1.0]])
    assert compression.m_by_n_fraction(weights, 2, 4) == 0.5
    with pytest.raises(ValueError, match="multiple of 4"):
        compression.m_by_n_fraction(np.ones((2, 6)), 2, 4)


def test_near_zero_share():
    assert compression.near_zero_share(np.array([0, 1, -1, 2], np.int8)) == 0.75
    assert compression.near_zero_share(np.array([0.0, 1.0, -1.0, 2.0])) == 0.25


def test_per_channel_distinct_values():
    weights = np.array([[1.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    assert compression.distinct_values(weights) == 5
    assert compression.distinct_values_per_channel(weights) == 3


def test_row_measures_against_reference(sparse_model_path, tmp_path):
    images = np.zeros((4, 8, 8, 1), np.float32)
    row = compression.tflite_row(sparse_model_path, sparse_model_path, images, np.zeros(4, int))
    assert row["size ratio"] == 1.0 and row["gzip ratio"] == 1.0
    assert 0.0 <= row["accuracy"] <= 1.0 and row["gzip KB"] < row["KB"]


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
