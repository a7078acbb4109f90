import numpy as np
import pytest

from helpers import runtimes
from tests.unit.test_onnxtools import tiny_onnx


def test_onnx_runner_threads_and_level(tmp_path):
    path = tiny_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((6, 4), dtype=np.float32)
    fast = runtimes.OnnxRunner(path, threads=1, level="all")
    plain = runtimes.OnnxRunner(path, threads=2, level="disable")
    assert fast.session.get_session_options().intra_op_num_threads == 1
    assert plain.session.get_session_options().intra_op_num_threads == 2
    out = fast.predict(x)
    assert out.shape == (6, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)       # a softmax, not the identity
    np.testing.assert_allclose(out, plain.predict(x), atol=1e-6)
    with pytest.raises(ValueError, match="level"):
        runtimes.OnnxRunner(path, level="fastest")
    with pytest.raises(FileNotFoundError):
        runtimes.OnnxRunner(tmp_path / "absent.onnx")
