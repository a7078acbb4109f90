import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import onnxtools


def tiny_onnx(path, batch="batch"):
    """image (batch×4) → MatMul(W) → Add(b) → Relu → Softmax, opset 17."""
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["image", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["z"]),
             helper.make_node("Relu", ["z"], ["r"]),
             helper.make_node("Softmax", ["r"], ["probs"], axis=-1)]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 4])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 3])],
                              [weights, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_summarize_reads_opset_dynamic_batch_and_parameters(tmp_path):
    summary = onnxtools.summarize(tiny_onnx(tmp_path / "m.onnx"))
    assert summary.opset == 17 and summary.input_name == "image" and summary.output_name == "probs"
    assert summary.input_shape == ("batch", 4) and summary.dynamic_batch
    assert summary.nodes == 4 and summary.parameters == 4 * 3 + 3
    assert summary.ops == {"MatMul": 1, "Add": 1, "Relu": 1, "Softmax": 1}
    fixed = onnxtools.summarize(tiny_onnx(tmp_path / "fixed.onnx", batch=8))
    assert fixed.input_shape == (8, 4) and not fixed.dynamic_batch


def test_op_counts_prefixes_other_domains():
    node = helper.make_node("FusedConv", ["x", "w"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([node, helper.make_node("Relu", ["y"], ["z"])], "g", [], [])
    counts = onnxtools.op_counts(helper.make_model(graph))
    assert counts == {"com.microsoft:FusedConv": 1, "Relu": 1}


def test_session_levels_threads_and_optimized_file(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(1).random((5, 4), dtype=np.float32)
    outputs = {}
    for level in onnxtools.LEVELS:
        optimized = tmp_path / f"opt_{level}.onnx"
        sess = onnxtools.session(path, threads=1, level=level, optimized_path=optimized)
        outputs[level] = sess.run(None, {"image": x})[0]
        assert optimized.is_file()
        assert sess.get_session_options().intra_op_num_threads == 1
    for level in onnxtools.LEVELS:
        np.testing.assert_allclose(outputs[level], outputs["disable"], atol=1e-6)
    # unoptimized: the four nodes as written; ENABLE_ALL fuses MatMul+Add into one Gemm or more
    assert onnxtools.summarize(tmp_path / "opt_disable.onnx").nodes == 4
    assert onnxtools.summarize(tmp_path / "opt_all.onnx").nodes < 4
    with pytest.raises(ValueError, match="level must be one of"):
        onnxtools.session(path, level="max")
    with pytest.raises(FileNotFoundError):
        onnxtools.session(tmp_path / "absent.onnx")


def test_calibration_reader_feeds_quantize_static(tmp_path):
    from onnxruntime.quantization import QuantFormat, quantize_static

    images = np.random.default_rng(2).random((7, 4), dtype=np.float32)
    reader = onnxtools.calibration_reader(images, "image", batch_size=3)
    batches = [reader.get_next() for _ in range(4)]
    assert [b["image"].shape[0] for b in batches[:3]] == [3, 3, 1] and batches[3] is None
    np.testing.assert_array_equal(np.concatenate([b["image"] for b in batches[:3]]), images)
    source = tiny_onnx(tmp_path / "m.onnx")
    quantize_static(str(source), str(tmp_path / "q.onnx"),
                    onnxtools.calibration_reader(images, "image", batch_size=3),
                    quant_format=QuantFormat.QDQ)
    assert onnxtools.op_counts(tmp_path / "q.onnx")["QuantizeLinear"] >= 1
    with pytest.raises(ValueError):
        onnxtools.calibration_reader(images[:0], "image")


def test_tensorrt_status_without_gpu(monkeypatch):
    monkeypatch.setattr(onnxtools.shutil, "which", lambda name: None)
    ok, why = onnxtools.tensorrt_status()
    assert not ok and "no NVIDIA GPU" in why


def test_tensorrt_status_gpu_without_tensorrt(monkeypatch):
    monkeypatch.setattr(onnxtools.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(onnxtools.importlib.util, "find_spec", lambda name: None)
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    ok, why = onnxtools.tensorrt_status()
    assert not ok and "neither" in why
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    ok, why = onnxtools.tensorrt_status()
    assert ok and "TensorrtExecutionProvider" in why


def test_tensorrt_provider_options_profile_and_cache(tmp_path):
    options = onnxtools.tensorrt_provider_options("image", (28, 28, 1), tmp_path, (1, 32, 256),
                                                  fp16=True, int8=True)
    assert options["trt_profile_min_shapes"] == "image:1x28x28x1"
    assert options["trt_profile_opt_shapes"] == "image:32x28x28x1"
    assert options["trt_profile_max_shapes"] == "image:256x28x28x1"
    assert options["trt_engine_cache_enable"] and options["trt_engine_cache_path"] == str(tmp_path)
    assert options["trt_fp16_enable"] and options["trt_int8_enable"]
    with pytest.raises(ValueError):
        onnxtools.tensorrt_provider_options("image", (4,), tmp_path, (8, 4, 16))
