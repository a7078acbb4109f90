import math

import numpy as np
import pytest

from helpers import checks

EXPECT = [checks.Expect("accuracy", ">=", full=0.9, smoke=0.5),
          checks.Expect("ratio", "<=", full=1.0, smoke=2.0)]


def test_passes_and_prints(capsys):
    outcomes = checks.assert_outcomes({"accuracy": 0.95, "ratio": 0.5}, EXPECT, "full")
    assert all(o.passed for o in outcomes)
    assert "PASS" in capsys.readouterr().out


def test_thresholds_follow_the_mode():
    metrics = {"accuracy": 0.6, "ratio": 1.5}
    checks.assert_outcomes(metrics, EXPECT, "smoke")
    with pytest.raises(AssertionError, match=r"2 outcome\(s\) failed in full mode"):
        checks.assert_outcomes(metrics, EXPECT, "full")


@pytest.mark.parametrize("value", [None, math.nan, "high"])
def test_missing_nan_or_wrong_type_fails(value):
    metrics = {"ratio": 0.5} if value is None else {"accuracy": value, "ratio": 0.5}
    with pytest.raises(AssertionError, match="accuracy"):
        checks.assert_outcomes(metrics, EXPECT, "full")


@pytest.mark.parametrize("value, op, threshold", [
    (True, ">=", 0.9), (True, "==", 1), (1, "==", True), (1.0, "==", True), (False, "<=", 0),
    (np.bool_(True), ">=", 0.5), ("yes", "==", True), (True, ">=", False),
])
def test_booleans_and_numbers_do_not_mix(value, op, threshold):
    outcome, = checks.evaluate({"m": value}, [checks.Expect("m", op, threshold, threshold)], "full")
    assert not outcome.passed


@pytest.mark.parametrize("value, op, threshold", [
    (True, "==", True), (np.bool_(False), "==", False), (np.float32(0.95), ">=", 0.9),
    (np.int64(3), "==", 3), ("Shirt", "==", "Shirt"), (2, "<", 2.5),
])
def test_same_kinds_compare(value, op, threshold):
    outcome, = checks.evaluate({"m": value}, [checks.Expect("m", op, threshold, threshold)], "full")
    assert outcome.passed


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown comparison"):
        checks.Expect("a", "=>", 1, 1)
    with pytest.raises(ValueError, match="Unknown mode"):
        checks.assert_outcomes({"accuracy": 1.0}, EXPECT, "fast")
    with pytest.raises(ValueError, match="at least one"):
        checks.assert_outcomes({}, [], "full")


def test_run_pytest_counts_passes_and_failures(tmp_path):
    (tmp_path / "test_sample.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    assert False\n")
    run = checks.run_pytest("test_sample.py", cwd=tmp_path, timeout_s=120)
    assert (run.passed, run.failed) == (1, 1) and "1 failed, 1 passed" in run.summary
    broken = checks.run_pytest("does_not_exist.py", cwd=tmp_path, timeout_s=120)
    assert broken.passed == 0 and broken.failed >= 1
