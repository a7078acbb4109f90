import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import litert, runtimes


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((37, 28, 28, 1), dtype=np.float32)


def test_tflite_float_parity(tiny_model, images, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tiny_model).convert())
    reference = runtimes.KerasRunner(tiny_model).predict(images)
    runner = runtimes.TFLiteRunner(path, num_threads=1, batch_size=8)   # 37 = 4×8 + padded 5
    result = runtimes.parity(reference, runner.predict(images))
    assert result["max_abs_diff"] < 1e-5 and result["top1_agreement"] == 1.0


def test_tflite_int8_io_is_quantized_and_dequantized(tiny_model, images, tmp_path):
    path = litert.convert_to_file(tiny_model, "int8", tmp_path / "int8.tflite", images)
    runner = runtimes.TFLiteRunner(path)
    assert runner.input["dtype"] == np.int8
    outputs = runner.predict(images)
    assert outputs.dtype == np.float32
    assert np.abs(outputs - tiny_model.predict(images, verbose=0)).max() < 0.05


def test_savedmodel_parity_and_unknown_signature(tiny_model, images, tmp_path):
    tiny_model.export(tmp_path / "sm", verbose=False)
    runner = runtimes.SavedModelRunner(tmp_path / "sm", batch_size=16)
    np.testing.assert_allclose(runner.predict(images), tiny_model.predict(images, verbose=0),
                               atol=1e-6)
    with pytest.raises(KeyError, match="no signature 'classify'"):
        runtimes.SavedModelRunner(tmp_path / "sm", signature="classify")
    with pytest.raises(KeyError, match="no output 'scores'"):
        runtimes.SavedModelRunner(tmp_path / "sm", output="scores")


def test_savedmodel_with_several_outputs_needs_a_name(tiny_model, images, tmp_path):
    class TwoOutputs(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model          # tracked, so its variables are saved

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
        def serve(self, image):
            probabilities = self.model(image)
            return {"probabilities": probabilities, "class_id": tf.argmax(probabilities, 1)}

    module = TwoOutputs(tiny_model)
    tf.saved_model.save(module, str(tmp_path / "two"), signatures={"serving_default": module.serve})
    with pytest.raises(KeyError, match="name one with output="):
        runtimes.SavedModelRunner(tmp_path / "two")
    runner = runtimes.SavedModelRunner(tmp_path / "two", output="probabilities")
    np.testing.assert_allclose(runner.predict(images), tiny_model.predict(images, verbose=0),
                               atol=1e-6)


def test_accuracy_and_errors(tiny_model, images, tmp_path):
    labels = tiny_model.predict(images, verbose=0).argmax(1)
    assert runtimes.accuracy(runtimes.KerasRunner(tiny_model), images, labels) == 1.0
    with pytest.raises(ValueError, match="predictions for"):
        runtimes.accuracy(runtimes.KerasRunner(tiny_model), images, labels[:3])
    with pytest.raises(ValueError, match="shapes differ"):
        runtimes.parity(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(FileNotFoundError, match="No .tflite model"):
        runtimes.litert_interpreter(tmp_path / "absent.tflite")


def test_onnx_runner_parity(tiny_model, images, tmp_path):
    import tf2onnx

    spec = (tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image"),)
    tf2onnx.convert.from_function(tf.function(lambda image: tiny_model(image)), input_signature=spec,
                                  output_path=str(tmp_path / "m.onnx"))
    outputs = runtimes.OnnxRunner(tmp_path / "m.onnx").predict(images)
    assert runtimes.parity(tiny_model.predict(images, verbose=0), outputs)["max_abs_diff"] < 1e-5
    with pytest.raises(FileNotFoundError, match="No ONNX model"):
        runtimes.OnnxRunner(tmp_path / "absent.onnx")


def test_tflite_latency_states_runs_and_threads(tiny_model, images, tmp_path):
    path = litert.convert_to_file(tiny_model, "float32", tmp_path / "lat.tflite")
    latency = runtimes.tflite_latency(path, images, threads=1, runs=7, warmup=2)
    assert latency.runs == 7 and latency.threads == 1 and 0 < latency.median_ms <= latency.p95_ms
