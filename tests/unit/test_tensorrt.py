import numpy as np
import pytest

from helpers import tensorrt
from tests.unit.test_onnxtools import tiny_onnx


def test_engine_path_changes_with_file_version_and_gpu(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    first = tensorrt.engine_path(tmp_path, path, "int8", "10.3.0", "NVIDIA H100 80GB HBM3")
    assert first.parent == tmp_path and first.suffix == ".engine" and " " not in first.name
    assert first == tensorrt.engine_path(tmp_path, path, "int8", "10.3.0", "NVIDIA H100 80GB HBM3")
    assert first != tensorrt.engine_path(tmp_path, path, "fp16", "10.3.0", "NVIDIA H100 80GB HBM3")
    assert first != tensorrt.engine_path(tmp_path, path, "int8", "10.4.0", "NVIDIA H100 80GB HBM3")
    assert first != tensorrt.engine_path(tmp_path, path, "int8", "10.3.0", "NVIDIA L4")
    path.write_bytes(path.read_bytes() + b"\0")                     # a retrained or changed file
    assert first != tensorrt.engine_path(tmp_path, path, "int8", "10.3.0", "NVIDIA H100 80GB HBM3")


def test_predict_in_chunks_never_exceeds_max_batch():
    sizes = []

    def run(batch):
        sizes.append(len(batch))
        return batch * 2

    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    np.testing.assert_array_equal(tensorrt.predict_in_chunks(run, x, 4), x * 2)
    assert sizes == [4, 4, 2]
    with pytest.raises(ValueError):
        tensorrt.predict_in_chunks(run, x, 0)


def test_symmetric_qdq_has_zero_points_all_zero(tmp_path):
    from onnxruntime.quantization import QuantFormat, quantize_static

    from helpers import onnxtools

    source = tiny_onnx(tmp_path / "m.onnx")
    images = np.random.default_rng(4).random((20, 4), dtype=np.float32)
    quantize_static(str(source), str(tmp_path / "default.onnx"),
                    onnxtools.calibration_reader(images, "image"), quant_format=QuantFormat.QDQ)
    assert tensorrt.asymmetric_zero_points(tmp_path / "default.onnx")   # ORT's default: not symmetric
    symmetric = tensorrt.write_symmetric_qdq(source, tmp_path / "sym.onnx", images, "image")
    assert onnxtools.op_counts(symmetric)["QuantizeLinear"] >= 1
    assert tensorrt.asymmetric_zero_points(symmetric) == []


def test_gpu_name_without_nvidia_smi(monkeypatch):
    monkeypatch.setattr(tensorrt.shutil, "which", lambda name: None)
    assert tensorrt.gpu_name() == "no-gpu"


def test_provider_session_asks_for_tensorrt_then_cuda(tmp_path, monkeypatch):
    import onnxruntime

    seen = {}

    def fake_session(path, providers):
        seen.update(path=path, providers=providers)
        return "session"

    monkeypatch.setattr(onnxruntime, "InferenceSession", fake_session)
    path = tiny_onnx(tmp_path / "m.onnx")
    assert tensorrt.provider_session(path, tmp_path, "image", (4,), (1, 2, 8), int8=True) == "session"
    (name, options), fallback = seen["providers"]
    assert name == "TensorrtExecutionProvider" and fallback == "CUDAExecutionProvider"
    assert options["trt_int8_enable"] and options["trt_profile_max_shapes"] == "image:8x4"


def test_tensorrt_status_without_gpu(monkeypatch):
    monkeypatch.setattr(tensorrt.shutil, "which", lambda name: None)
    ok, why = tensorrt.tensorrt_status()
    assert not ok and "no NVIDIA GPU" in why


def test_tensorrt_status_gpu_without_tensorrt(monkeypatch):
    monkeypatch.setattr(tensorrt.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(tensorrt.importlib.util, "find_spec", lambda name: None)
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    ok, why = tensorrt.tensorrt_status()
    assert not ok and "neither" in why
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    ok, why = tensorrt.tensorrt_status()
    assert ok and "TensorrtExecutionProvider" in why


def test_tensorrt_provider_options_profile_and_cache(tmp_path):
    options = tensorrt.tensorrt_provider_options("image", (28, 28, 1), tmp_path, (1, 32, 256),
                                                  fp16=True, int8=True)
    assert options["trt_profile_min_shapes"] == "image:1x28x28x1"
    assert options["trt_profile_opt_shapes"] == "image:32x28x28x1"
    assert options["trt_profile_max_shapes"] == "image:256x28x28x1"
    assert options["trt_engine_cache_enable"] and options["trt_engine_cache_path"] == str(tmp_path)
    assert options["trt_fp16_enable"] and options["trt_int8_enable"]
    with pytest.raises(ValueError):
        tensorrt.tensorrt_provider_options("image", (4,), tmp_path, (8, 4, 16))
