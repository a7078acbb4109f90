import keras
import numpy as np
import pytest

from helpers import bench, litert, runtimes


@pytest.fixture(scope="module")
def model_and_images():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    return model, np.random.default_rng(0).random((20, 28, 28, 1), dtype=np.float32)


@pytest.mark.parametrize("mode", litert.MODES)
def test_every_mode_converts_and_runs(model_and_images, mode, tmp_path):
    model, images = model_and_images
    path = litert.convert_to_file(model, mode, tmp_path / f"{mode}.tflite", images)
    outputs = runtimes.TFLiteRunner(path, batch_size=5).predict(images)
    assert outputs.shape == (20, 10)
    assert np.abs(outputs - model.predict(images, verbose=0)).max() < 0.05


def test_quantized_modes_are_smaller(model_and_images, tmp_path):
    model, images = model_and_images
    reference = litert.convert_to_file(model, "float32", tmp_path / "f.tflite")
    int8 = litert.convert_to_file(model, "int8", tmp_path / "i.tflite", images)
    assert bench.size_report(int8, reference).ratio > 2.5


def test_int8_weights_are_per_channel(model_and_images, tmp_path):
    model, images = model_and_images
    path = litert.convert_to_file(model, "int8", tmp_path / "i.tflite", images)
    kernel = litert.tensor_quantization(path, "conv", ndim=4)
    assert kernel["dtype"] == "int8" and len(kernel["scales"]) == 4   # one per output channel
    with pytest.raises(KeyError):
        litert.tensor_quantization(path, "no-such-tensor")


def test_bad_arguments(model_and_images):
    model, _ = model_and_images
    with pytest.raises(ValueError, match="Unknown mode"):
        litert.convert(model, "int2")
    with pytest.raises(ValueError, match="needs calibration images"):
        litert.convert(model, "int8")
