import keras
import numpy as np
import pytest

from helpers import litert, runtimes


def test_builtin_kernels_give_the_same_outputs_without_xnnpack(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    images = np.random.default_rng(0).random((6, 28, 28, 1), dtype=np.float32)
    path = litert.convert_to_file(model, "int8", tmp_path / "m.tflite", images)
    default = runtimes.TFLiteRunner(path, 1, batch_size=2)
    builtin = runtimes.TFLiteRunner(path, 1, batch_size=2, kernels="builtin")
    assert np.abs(default.predict(images) - builtin.predict(images)).max() <= 1 / 256 + 1e-6
    delegated = [op["op_name"] for op in default.interpreter._get_ops_details()]
    plain = [op["op_name"] for op in builtin.interpreter._get_ops_details()]
    assert "DELEGATE" in delegated and "DELEGATE" not in plain    # XNNPACK took the graph over
    with pytest.raises(ValueError, match="kernels must be"):
        runtimes.litert_interpreter(path, kernels="gpu")
