import time

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
    assert runner.input["dtype"] == np.int8 and runner.output["dtype"] == np.int8
    scale, zero_point = runner.input["quantization"]
    assert scale == pytest.approx(1 / 255, rel=1e-3) and zero_point == -128   # [0, 1] over int8
    x = np.array([0.0, 0.5, 1.0, 2.0, -1.0], np.float32)
    quantized = runner._quantize(x)
    assert quantized.dtype == np.int8
    np.testing.assert_array_equal(quantized, [-128, round(0.5 / scale) - 128, 127, 127, -128])
    out_scale, out_zero = runner.output["quantization"]
    raw = np.array([-128, 0, 127], np.int8)
    np.testing.assert_allclose(runner._dequantize(raw), (raw.astype(np.float32) - out_zero) * out_scale)
    outputs = runner.predict(images)
    assert outputs.dtype == np.float32 and outputs.shape == (37, 10)
    expected = tiny_model.predict(images, verbose=0)
    # A softmax output quantized to 1/256 steps: within two steps of float, same top class.
    assert np.abs(outputs - expected).max() < 2 * out_scale
    assert runtimes.parity(expected, outputs)["top1_agreement"] >= 0.9


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
    expected = tiny_model.predict(images, verbose=0)
    np.testing.assert_allclose(runner.predict(images), expected, atol=1e-6)
    class_ids = runtimes.SavedModelRunner(tmp_path / "two", output="class_id", batch_size=10)
    np.testing.assert_array_equal(class_ids.predict(images), expected.argmax(1))   # the named key


class FixedRunner:
    """A runner whose outputs are given: one row of class scores per image."""

    def __init__(self, outputs):
        self.outputs = np.asarray(outputs, np.float32)

    def predict(self, x):
        return self.outputs[:len(x)]


def test_accuracy_is_the_share_of_top1_matches():
    scores = np.eye(10, dtype=np.float32)[[3, 1, 4, 1, 5, 9, 2, 6, 5, 3]] * 0.5 + 0.05
    labels = np.array([3, 1, 4, 1, 5, 0, 0, 0, 0, 3])          # 6 of 10 right
    assert runtimes.accuracy(FixedRunner(scores), np.zeros((10, 28, 28, 1)), labels) == 0.6
    assert runtimes.accuracy(FixedRunner(scores), np.zeros((10, 28, 28, 1)), (labels + 1) % 10) == 0.0


def test_accuracy_of_a_real_model_on_labels_with_known_errors(tiny_model, images):
    predicted = tiny_model.predict(images[:35], verbose=0).argmax(1)
    labels = predicted.copy()
    labels[::5] = (labels[::5] + 1) % 10          # 7 wrong
    labels[1::5] = (labels[1::5] + 3) % 10        # 7 more wrong: 21 of 35 right
    runner = runtimes.KerasRunner(tiny_model, batch_size=8)
    assert runtimes.accuracy(runner, images[:35], labels) == pytest.approx(0.6)


def test_accuracy_and_errors(tiny_model, images, tmp_path):
    labels = tiny_model.predict(images, verbose=0).argmax(1)
    with pytest.raises(ValueError, match="predictions for"):
        runtimes.accuracy(runtimes.KerasRunner(tiny_model), images, labels[:3])
    with pytest.raises(ValueError, match="shapes differ"):
        runtimes.parity(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(FileNotFoundError, match="No .tflite model"):
        runtimes.litert_interpreter(tmp_path / "absent.tflite")


def test_parity_reports_the_largest_difference_and_the_top1_agreement():
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)
    other = np.array([[0.9, 0.1], [0.25, 0.75], [0.4, 0.6], [0.1, 0.9]], np.float32)
    result = runtimes.parity(reference, other)
    assert result["max_abs_diff"] == pytest.approx(0.2)      # rows 3 and 4, signs ignored
    assert result["top1_agreement"] == 0.75                  # row 3 flips its top class
    assert runtimes.parity(other, reference)["max_abs_diff"] == pytest.approx(0.2)


def test_onnx_runner_parity(tiny_model, images, tmp_path):
    import tf2onnx

    spec = (tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image"),)
    tf2onnx.convert.from_function(tf.function(lambda image: tiny_model(image)), input_signature=spec,
                                  output_path=str(tmp_path / "m.onnx"))
    outputs = runtimes.OnnxRunner(tmp_path / "m.onnx").predict(images)
    assert runtimes.parity(tiny_model.predict(images, verbose=0), outputs)["max_abs_diff"] < 1e-5
    with pytest.raises(FileNotFoundError, match="No ONNX model"):
        runtimes.OnnxRunner(tmp_path / "absent.onnx")


def test_tflite_latency_times_the_interpreter_in_milliseconds(tiny_model, images, tmp_path):
    path = litert.convert_to_file(tiny_model, "float32", tmp_path / "lat.tflite")
    latency = runtimes.tflite_latency(path, images, threads=1, runs=60, warmup=5)
    assert latency.runs == 60 and latency.warmup == 5 and latency.threads == 1
    # An independent timing of the same invoke(): the helper times the model, not an empty call,
    # and reports milliseconds (a tiny dense model runs in microseconds, never in milliseconds).
    runner = runtimes.TFLiteRunner(path, 1, batch_size=1)
    runner.set_input(images[:1])
    samples = []
    for _ in range(60):
        started = time.perf_counter()
        runner.interpreter.invoke()
        samples.append(time.perf_counter() - started)
    independent_ms = float(np.median(samples)) * 1000
    assert 0.0005 < latency.median_ms <= latency.p95_ms < 5
    assert independent_ms / 4 < latency.median_ms < independent_ms * 4
