"""A profiler trace summarised: op events summed by type, framework events left out."""

import pytest
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from helpers import profiling


def _space():
    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    names = {1: "c1/Relu:_FusedConv2D", 2: "c2/Relu:_FusedConv2D", 3: "p/MaxPool:MaxPool",
             4: "ExecutorState::Process", 5: "EagerLocalExecute: __inference_step_7"}
    for i, name in names.items():
        plane.event_metadata[i].name = name
    line = plane.lines.add(name="tf_Compute/1")
    for metadata_id, ms in [(1, 3.0), (2, 5.0), (3, 2.0), (4, 50.0), (5, 70.0)]:
        line.events.add(metadata_id=metadata_id, duration_ps=int(ms * 1e9))
    other = space.planes.add(name="/device:GPU:0")
    other.event_metadata[1].name = "x:Gpu"
    other.lines.add(name="ops").events.add(metadata_id=1, duration_ps=int(1e12))
    return space


def test_op_times_sums_by_type_longest_first():
    rows = profiling.op_times(_space())
    assert [r["op type"] for r in rows] == ["_FusedConv2D", "MaxPool"]
    assert rows[0]["calls"] == 2 and rows[0]["total ms"] == pytest.approx(8.0)
    assert rows[0]["share %"] == pytest.approx(80.0)
    assert rows[0]["example"] == "c1/Relu"


def test_op_times_reads_other_planes_on_request():
    rows = profiling.op_times(_space(), plane_prefix="/device:GPU")
    assert rows == [{"op type": "Gpu", "calls": 1, "total ms": 1000.0, "share %": 100.0, "example": "x"}]


def test_load_xspace_finds_the_newest_file(tmp_path):
    folder = tmp_path / "plugins" / "profile" / "run"
    folder.mkdir(parents=True)
    (folder / "host.xplane.pb").write_bytes(_space().SerializeToString())
    space = profiling.load_xspace(tmp_path)
    assert profiling.op_times(space)[0]["op type"] == "_FusedConv2D"
    (tmp_path / "plugins" / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="xplane"):
        profiling.load_xspace(tmp_path / "plugins" / "empty")
