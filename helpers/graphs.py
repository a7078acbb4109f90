"""What a graph compiler did to a model: XLA's optimized HLO and TensorFlow's Grappler rewrites.

Fusion is easy to claim and easy to check: XLA prints the HLO module it will run, and Grappler
returns the rewritten ``GraphDef``. These helpers read both and count what is in them:

- :func:`hlo_entry_ops` counts the instructions of an HLO module's ``ENTRY`` computation (what
  actually runs, one kernel per fusion) and :func:`hlo_fusions` lists each fusion with the
  operations it merged;
- :func:`grappler_graph` runs TensorFlow's graph optimizer (Grappler) on a frozen concrete
  function, the way a ``tf.function`` is rewritten before it runs; :func:`graph_op_counts` and
  :func:`fused_nodes` read the result;
- :func:`op_determinism_off` lets XLA compile a training step in a session that asked for
  deterministic ops.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager

# `%name = f32[1,26,26,32]{3,2,1,0} fusion(%a, %b), kind=kLoop, calls=%fused_computation.7, ...`
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%(?P<name>[\w.\-]+)\s*=\s*.+?\s(?P<op>[a-z][a-z0-9\-]*)\(")
_COMPUTATION = re.compile(r"^(?P<entry>ENTRY\s+)?%(?P<name>[\w.\-]+)\s.*\{\s*$")


def _computations(hlo_text: str) -> dict[str, list[tuple[str, str, str]]]:
    """Each computation's instructions as ``(name, opcode, line)``; the entry one under ``"ENTRY"``."""
    computations: dict[str, list[tuple[str, str, str]]] = {}
    current = None
    for line in hlo_text.splitlines():
        header = _COMPUTATION.match(line)
        if header:
            current = "ENTRY" if header.group("entry") else header.group("name")
            computations[current] = []
            continue
        if line.strip() == "}":
            current = None
            continue
        found = _INSTRUCTION.match(line)
        if current is not None and found:
            computations[current].append((found.group("name"), found.group("op"), line))
    return computations


def hlo_entry_ops(hlo_text: str) -> Counter:
    """Opcode counts of the ``ENTRY`` computation of an HLO module (text from
    ``tf.function(...).experimental_get_compiler_ir(x)(stage=...)``).

    In optimized HLO every ``fusion`` is one generated kernel; ``parameter``, ``constant`` and
    ``bitcast`` cost nothing at run time.
    """
    entry = _computations(hlo_text).get("ENTRY")
    if entry is None:
        raise ValueError("No ENTRY computation found: pass the text of an HLO module")
    return Counter(op for _, op, _ in entry)


def hlo_fusions(hlo_text: str) -> list[dict]:
    """Each ``fusion`` of the ``ENTRY`` computation: its name, kind (``kLoop``: elementwise
    work merged into one loop; ``kOutput``/``kInput``: merged into a matmul/reduction), the
    TensorFlow op it is attributed to, the HLO operations it merged (``parameter`` and
    ``bitcast`` left out), and ``compute ops``: how many of those compute (``constant`` left out
    too). A fusion with one compute op merged nothing: XLA on a CPU wraps single ops
    (``wrapped_reduce``) in fusions as well."""
    computations = _computations(hlo_text)
    fusions = []
    for name, op, line in computations.get("ENTRY", []):
        if op != "fusion":
            continue
        kind = re.search(r"kind=(\w+)", line)
        calls = re.search(r"calls=%([\w.\-]+)", line)
        tf_op = re.search(r'op_name="([^"]+)"', line)
        inner = computations.get(calls.group(1), []) if calls else []
        merged = [o for _, o, _ in inner if o not in ("parameter", "bitcast")]
        fusions.append({"fusion": name, "kind": kind.group(1) if kind else "?",
                        "tf op": tf_op.group(1) if tf_op else "", "merged": ", ".join(merged),
                        "compute ops": sum(o != "constant" for o in merged)})
    return fusions


def grappler_graph(concrete_function):
    """The ``GraphDef`` that Grappler makes of ``concrete_function`` (variables frozen to
    constants, placed on the CPU), with TensorFlow's default rewrites: constant folding,
    arithmetic simplification, remapping (Conv2D + BiasAdd + Relu into one ``_FusedConv2D``).
    In builds with oneDNN a later pass, when the graph runs, swaps such fused ops for oneDNN's
    kernels (``_MklNativeFusedConv2D``); a profiler trace shows those.
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    from tensorflow.python.grappler import tf_optimizer
    from tensorflow.python.training import saver

    frozen = convert_variables_to_constants_v2(concrete_function)
    graph_def = frozen.graph.as_graph_def()
    for node in graph_def.node:
        node.device = "/device:CPU:0"
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
        for output in frozen.outputs:          # what Grappler must keep: the outputs
            graph.add_to_collection("train_op", graph.get_operation_by_name(output.op.name))
        meta_graph = saver.export_meta_graph(graph_def=graph.as_graph_def(), graph=graph)
    return tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta_graph)


def graph_op_counts(graph_def) -> Counter:
    """How many nodes of each op type a ``GraphDef`` (or a ``tf.Graph``) holds."""
    if hasattr(graph_def, "as_graph_def"):
        graph_def = graph_def.as_graph_def()
    return Counter(node.op for node in graph_def.node)


def fused_nodes(graph_def) -> list[dict]:
    """The nodes of a ``GraphDef`` whose op is a fused kernel (``_FusedConv2D``,
    ``_FusedMatMul``, ...), each with the operations folded into it (its ``fused_ops``)."""
    rows = []
    for node in graph_def.node:
        if "Fused" in node.op:
            fused = [s.decode() for s in node.attr["fused_ops"].list.s] if "fused_ops" in node.attr else []
            rows.append({"node": node.name, "op": node.op, "fused ops": " + ".join(fused)})
    return rows


@contextmanager
def op_determinism_off():
    """Turn TensorFlow's op determinism off inside the block, and back on after if it was on.

    The course's setup enables it (``tf.config.experimental.enable_op_determinism``) so that runs
    repeat exactly; but XLA has no deterministic kernel for some gradients (MaxPool's), so an
    XLA-compiled training step fails with ``UnimplementedError`` while it is on, and Keras's
    ``compile(jit_compile=True)`` quietly falls back to no XLA. TensorFlow has no public switch
    to turn it off again; this uses the private one.
    """
    from tensorflow.python.framework import config

    was_on = config.is_op_determinism_enabled()
    config.disable_op_determinism()
    try:
        yield
    finally:
        if was_on:
            config.enable_op_determinism()


def tflite_ops(path) -> list[dict]:
    """The operators of a ``.tflite`` file's main subgraph, in order: ``op`` (``CONV_2D``, ...)
    and ``activation``, the activation fused into it (``RELU``, ``NONE``; ``None`` for ops that
    have no such option). Read from the flatbuffer, so no interpreter is needed."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(open(path, "rb").read(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    activations = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
    rows = []
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        fused = getattr(op.builtinOptions, "fusedActivationFunction", None)
        rows.append({"op": names[max(code.builtinCode, code.deprecatedBuiltinCode)],
                     "activation": activations.get(fused)})
    return rows
