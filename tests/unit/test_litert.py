"""Every LiteRT mode stores the dtypes it promises, and stays as close to float as it can."""

import keras
import numpy as np
import pytest

from helpers import bench, compression, litert, runtimes


@pytest.fixture(scope="module")
def model_and_images():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    return model, np.random.default_rng(0).random((20, 28, 28, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def converted(model_and_images, tmp_path_factory):
    """Each mode's file, converted once for the module."""
    model, images = model_and_images
    folder = tmp_path_factory.mktemp("litert")
    return {mode: litert.convert_to_file(model, mode, folder / f"{mode}.tflite", images)
            for mode in litert.MODES}


def _io_dtypes(path) -> tuple[str, str]:
    interpreter = runtimes.litert_interpreter(path)
    return (np.dtype(interpreter.get_input_details()[0]["dtype"]).name,
            np.dtype(interpreter.get_output_details()[0]["dtype"]).name)


def _kernel_dtypes(path) -> dict[str, tuple[str, int]]:
    """Each stored kernel's dtype and weight count (conv: 36 weights, dense: 27,040)."""
    return {name: (w.dtype.name, w.size) for name, w in compression.tflite_kernels(path).items()}


def _activation_dtypes(path) -> set[str]:
    """The dtypes the convolution and dense operators compute on (their first input)."""
    return {dtype for op, dtype in compression.op_types(path) if op in compression.WEIGHTED_OPS}


# Per mode: interface dtypes, kernel dtype, activation dtype, and the largest difference from
# the Keras model's softmax measured on this model (float32 1.5e-7, float16 2e-5, dynamic and
# int16x8 9e-4 from int8 weights, int8 2.9e-3 = 0.7 output step) with about 3x room.
EXPECTED = {
    "float32": (("float32", "float32"), "float32", "float32", 1e-6),
    "float16": (("float32", "float32"), "float16", "float32", 1e-4),
    "dynamic": (("float32", "float32"), "int8", "float32", 3e-3),
    "int8": (("int8", "int8"), "int8", "int8", 2 / 256),        # two steps of the int8 output
    "int16x8": (("float32", "float32"), "int8", "int16", 3e-3),
}


@pytest.mark.parametrize("mode", litert.MODES)
def test_each_mode_stores_its_dtypes(converted, mode):
    io, kernel_dtype, activation_dtype, _ = EXPECTED[mode]
    path = converted[mode]
    assert _io_dtypes(path) == io
    kernels = _kernel_dtypes(path)
    assert len(kernels) == 2
    if mode == "dynamic":   # the converter leaves tensors under 1,024 weights in float
        assert {dtype for dtype, size in kernels.values() if size >= 1024} == {"int8"}
        assert {dtype for dtype, size in kernels.values() if size < 1024} == {"float32"}
    else:
        assert {dtype for dtype, _ in kernels.values()} == {kernel_dtype}
    assert _activation_dtypes(path) == {activation_dtype}


def test_int16x8_quantizes_its_float_input_to_int16(converted):
    ops = compression.op_types(converted["int16x8"])
    assert ops[0] == ("QUANTIZE", "float32") and ops[-1] == ("DEQUANTIZE", "int16")
    interpreter = runtimes.litert_interpreter(converted["int16x8"])
    first = interpreter._get_ops_details()[0]
    assert interpreter.get_tensor_details()[first["outputs"][0]]["dtype"] == np.int16


@pytest.mark.parametrize("mode", litert.MODES)
def test_each_mode_is_as_close_to_float_as_it_should_be(model_and_images, converted, mode):
    model, images = model_and_images
    tolerance = EXPECTED[mode][3]
    runner = runtimes.TFLiteRunner(converted[mode], batch_size=5)
    outputs = runner.predict(images)
    expected = model.predict(images, verbose=0)
    assert outputs.shape == (20, 10) and outputs.dtype == np.float32
    if mode == "int8":
        assert tolerance == pytest.approx(2 * runner.output["quantization"][0])
    assert np.abs(outputs - expected).max() < tolerance
    assert runtimes.parity(expected, outputs)["top1_agreement"] == 1.0


def test_sizes_follow_the_weight_dtypes(converted):
    def ratio(mode):
        return bench.size_report(converted[mode], converted["float32"]).ratio

    assert 1.8 < ratio("float16") < 2.1                         # 2 bytes per weight instead of 4
    for mode in ("dynamic", "int8", "int16x8"):
        assert 3.0 < ratio(mode) < 4.1, mode                    # 1 byte per weight, plus overhead


def test_int8_weights_are_per_channel_and_symmetric(model_and_images, converted):
    model, _ = model_and_images
    kernel = litert.tensor_quantization(converted["int8"], "conv", ndim=4)
    assert kernel["dtype"] == "int8" and kernel["shape"] == (4, 3, 3, 1) and kernel["axis"] == 0
    assert all(type(d) is int for d in kernel["shape"])          # printable, not np.int32(4)
    # One scale per output channel: the channel's largest |weight| maps to 127.
    keras_kernel = model.get_layer("conv").get_weights()[0]            # [h, w, in, out]
    expected_scales = np.abs(keras_kernel).max(axis=(0, 1, 2)) / 127
    np.testing.assert_allclose(kernel["scales"], expected_scales, rtol=1e-5)
    np.testing.assert_array_equal(kernel["zero_points"], np.zeros(4))
    with pytest.raises(KeyError):
        litert.tensor_quantization(converted["int8"], "no-such-tensor")


def test_representative_data_yields_single_float32_images():
    images = np.arange(3 * 28 * 28, dtype=np.float64).reshape(3, 28, 28, 1)
    batches = list(litert.representative_data(images))
    assert len(batches) == 3
    for batch, image in zip(batches, images):
        assert len(batch) == 1 and batch[0].shape == (1, 28, 28, 1) and batch[0].dtype == np.float32
        np.testing.assert_array_equal(batch[0][0], image)


def test_convert_to_file_creates_folders_and_writes_a_loadable_model(model_and_images, tmp_path):
    model, _ = model_and_images
    path = litert.convert_to_file(model, "float32", tmp_path / "a" / "b" / "m.tflite")
    assert path == tmp_path / "a" / "b" / "m.tflite"
    assert path.read_bytes()[4:8] == b"TFL3"                      # the FlatBuffer identifier
    assert _io_dtypes(path) == ("float32", "float32")


def test_bad_arguments(model_and_images):
    model, _ = model_and_images
    with pytest.raises(ValueError, match="Unknown mode"):
        litert.convert(model, "int2")
    for mode in ("int8", "int16x8"):
        with pytest.raises(ValueError, match="needs calibration images"):
            litert.convert(model, mode)
        with pytest.raises(ValueError, match="needs calibration images"):
            litert.convert(model, mode, np.zeros((0, 28, 28, 1), np.float32))
