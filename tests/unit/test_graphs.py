"""Reading what XLA and Grappler did: HLO fusions counted, Grappler's fused kernels found."""

import numpy as np
import pytest
import tensorflow as tf

from helpers import graphs

HLO = """HloModule m, is_scheduled=true

%fused_computation (param_0: f32[4], param_1: f32[4]) -> f32[4] {
  %param_0 = f32[4]{0} parameter(0)
  %param_1 = f32[4]{0} parameter(1)
  %add.1 = f32[4]{0} add(%param_0, %param_1), metadata={op_type="BiasAdd" op_name="d/BiasAdd"}
  %constant.1 = f32[] constant(0)
  %broadcast.1 = f32[4]{0} broadcast(%constant.1), dimensions={}
  ROOT %maximum.1 = f32[4]{0} maximum(%add.1, %broadcast.1), metadata={op_type="Relu" op_name="d/Relu"}
}

ENTRY %main (arg0: f32[4], arg1: f32[4]) -> f32[4] {
  %arg0 = f32[4]{0} parameter(0), metadata={op_name="XLA_Args"}
  %arg1 = f32[4]{0} parameter(1), metadata={op_name="XLA_Args"}
  %bitcast = f32[4]{0} bitcast(%arg0)
  %convolution.2 = f32[4]{0} convolution(%bitcast, %arg1), window={size=1}
  ROOT %add_maximum_fusion = f32[4]{0} fusion(%convolution.2, %arg1), kind=kLoop, calls=%fused_computation, \
metadata={op_type="Relu" op_name="d/Relu"}
}
"""


def test_entry_ops_counts_only_the_entry_computation():
    ops = graphs.hlo_entry_ops(HLO)
    assert ops == {"parameter": 2, "bitcast": 1, "convolution": 1, "fusion": 1}
    assert "maximum" not in ops          # inside the fused computation, not run separately


def test_entry_ops_refuses_text_without_entry():
    with pytest.raises(ValueError, match="ENTRY"):
        graphs.hlo_entry_ops("not hlo at all")


def test_fusions_list_what_each_merged():
    (fusion,) = graphs.hlo_fusions(HLO)
    assert fusion["fusion"] == "add_maximum_fusion"
    assert fusion["kind"] == "kLoop"
    assert fusion["tf op"] == "d/Relu"
    assert fusion["merged"] == "add, constant, broadcast, maximum"
    assert fusion["compute ops"] == 3    # the constant is not counted


def test_real_xla_hlo_has_fusions():
    f = tf.function(lambda x: tf.nn.relu(x * 2.0 + 1.0), jit_compile=True)
    x = tf.ones((8,))
    text = f.experimental_get_compiler_ir(x)(stage="optimized_hlo")
    assert graphs.hlo_entry_ops(text)["fusion"] >= 1
    assert all(row["merged"] for row in graphs.hlo_fusions(text))


def test_grappler_fuses_conv_bias_relu():
    kernel, bias = tf.Variable(np.ones((3, 3, 1, 4), "float32")), tf.Variable(np.ones(4, "float32"))
    f = tf.function(lambda x: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "VALID"), bias)))
    concrete = f.get_concrete_function(tf.TensorSpec([1, 8, 8, 1], tf.float32))
    before = graphs.graph_op_counts(concrete.graph)
    assert before["Conv2D"] == 1 and before["Relu"] == 1
    optimized = graphs.grappler_graph(concrete)
    after = graphs.graph_op_counts(optimized)
    assert after["Conv2D"] == 0 and after["Relu"] == 0 and after["BiasAdd"] == 0
    (fused,) = graphs.fused_nodes(optimized)
    assert "Conv2D" in fused["op"]
    assert fused["fused ops"] == "BiasAdd + Relu"


def test_op_determinism_off_restores_the_setting():
    from tensorflow.python.framework import config

    was_on = config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        with graphs.op_determinism_off():
            assert not config.is_op_determinism_enabled()
        assert config.is_op_determinism_enabled()
        with pytest.raises(RuntimeError), graphs.op_determinism_off():
            raise RuntimeError("restored on failure too")
        assert config.is_op_determinism_enabled()
    finally:
        if not was_on:
            config.disable_op_determinism()


def test_tflite_ops_show_the_fused_activation(tmp_path):
    kernel = tf.constant(np.ones((3, 3, 1, 4), "float32"))
    f = tf.function(lambda x: tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "VALID")) + 1.0)
    concrete = f.get_concrete_function(tf.TensorSpec([1, 8, 8, 1], tf.float32))
    path = tmp_path / "conv_relu.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete], f).convert())
    ops = graphs.tflite_ops(path)
    assert [row["op"] for row in ops] == ["CONV_2D", "ADD"]
    assert ops[0]["activation"] == "RELU" and ops[1]["activation"] == "NONE"
