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


def test_summarize_counts_only_float_initializers(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    model.graph.initializer.append(numpy_helper.from_array(np.array([0, 2, 1], np.int64), "perm"))
    onnx.save(model, str(tmp_path / "with_shape.onnx"))
    assert onnxtools.summarize(tmp_path / "with_shape.onnx").parameters == 4 * 3 + 3


def test_batch_call_runs_onnx_and_rejects_other_files(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(3).random((5, 4), dtype=np.float32)
    out = onnxtools.batch_call(path, x)()
    np.testing.assert_allclose(out, onnxtools.session(path).run(None, {"image": x})[0], atol=1e-7)
    assert out.shape == (5, 3)
    with pytest.raises(ValueError, match="onnx or .tflite"):
        onnxtools.batch_call(tmp_path / "m.pb", x)


def test_ratio_range_is_the_interquartile_of_round_ratios():
    from helpers import bench

    timing = bench.Interleaved(latency={}, round_medians={"a": (1.0, 2.0, 3.0, 4.0, 5.0),
                                                         "b": (1.0, 1.0, 1.0, 1.0, 1.0)})
    assert onnxtools.ratio_range(timing, "a", "b") == (2.0, 4.0)
    low, high = onnxtools.ratio_range(timing, "b", "a")
    assert low < high < 1.0


def test_int8_ops_as_run_lists_the_fused_int8_kernels(tmp_path):
    from onnxruntime.quantization import QuantFormat, quantize_static

    source = tiny_onnx(tmp_path / "m.onnx")
    images = np.random.default_rng(5).random((20, 4), dtype=np.float32)
    quantize_static(str(source), str(tmp_path / "q.onnx"), onnxtools.calibration_reader(images, "image"),
                    quant_format=QuantFormat.QDQ)
    ops = onnxtools.int8_ops_as_run(tmp_path / "q.onnx", tmp_path / "as_run.onnx")
    assert (tmp_path / "as_run.onnx").is_file() and ops and all(n >= 1 for n in ops.values())
    assert "QuantizeLinear" in ops or any(op.startswith("com.microsoft:Q") for op in ops)
    assert "Relu" not in ops and "MatMul" not in ops
    assert onnxtools.int8_ops_as_run(source, tmp_path / "plain.onnx") == {}


def test_check_and_compare_reports_parity_and_rejects_invalid_files(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(6).random((8, 4), dtype=np.float32)
    reference = onnxtools.session(path).run(None, {"image": x})[0]
    row = onnxtools.check_and_compare(path, x, reference)
    assert row["opset"] == 17 and row["dynamic batch"] and row["output"] == "probs"
    assert row["max_abs_diff"] < 1e-6 and row["top1_agreement"] == 1.0
    shifted = onnxtools.check_and_compare(path, x, reference + 0.01)
    assert abs(shifted["max_abs_diff"] - 0.01) < 1e-6
    broken = onnx.load(str(path))
    broken.graph.node[0].input[1] = "missing"
    onnx.save(broken, str(tmp_path / "broken.onnx"))
    with pytest.raises(onnx.checker.ValidationError):
        onnxtools.check_and_compare(tmp_path / "broken.onnx", x, reference)
