"""Summarise a ``tf.profiler.experimental`` trace without TensorBoard.

``tf.profiler.experimental.start(logdir)`` ... ``stop()`` writes an ``XSpace`` protocol buffer,
``<logdir>/plugins/profile/<run>/<host>.xplane.pb``, which TensorBoard's profile plugin
displays. The same file read here gives the table that matters most: which TensorFlow ops took
the time. Each op run is an event named ``"<op name>:<op type>"`` on a ``tf_Compute`` (or
``TensorFlow Ops``) line of the ``/host:CPU`` plane (``/device:GPU:N`` planes on a GPU).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


def latest_xspace_file(logdir: Path) -> Path:
    """The newest ``*.xplane.pb`` under ``logdir`` (one profiling session writes one per host)."""
    files = sorted(Path(logdir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"No *.xplane.pb under {logdir}: was the profiler started and stopped?")
    return files[-1]


def load_xspace(path: Path):
    """Parse an ``.xplane.pb`` file (or the newest one under a folder) into an ``XSpace``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = Path(path)
    if path.is_dir():
        path = latest_xspace_file(path)
    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    return space


def _is_op_event(name: str) -> bool:
    # "conv2_1/Relu:_MklNativeFusedConv2D" is an op; "ExecutorState::Process" and
    # "EagerLocalExecute: __inference_step_42" (the call of a whole function) are framework work
    return ":" in name and "::" not in name and ": " not in name


def op_times(space, plane_prefix: str = "/host:CPU") -> list[dict]:
    """Total time per TensorFlow op type in an ``XSpace``, longest first.

    Returns rows ``{"op type", "calls", "total ms", "share %", "example"}``; ``share %`` is of
    the time of all op events counted (framework overhead such as the executor is left out).
    """
    totals: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    examples: dict[str, str] = {}
    for plane in space.planes:
        if not plane.name.startswith(plane_prefix):
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if not _is_op_event(name):
                    continue
                op_name, op_type = name.rsplit(":", 1)
                totals[op_type] += event.duration_ps / 1e9
                calls[op_type] += 1
                examples.setdefault(op_type, op_name)
    grand = sum(totals.values()) or 1.0
    rows = [{"op type": op, "calls": calls[op], "total ms": round(ms, 3),
             "share %": round(100 * ms / grand, 1), "example": examples[op]}
            for op, ms in totals.items()]
    return sorted(rows, key=lambda row: -row["total ms"])
