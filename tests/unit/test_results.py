import json

import numpy as np
import pytest

from helpers import results


def test_full_mode_writes_record(fake_root):
    record = results.record("99_try_things", {"accuracy": np.float32(0.5), "curve": [1, 2]}, "full")
    written = json.loads((fake_root / "results" / "99_try_things.json").read_text())
    assert written == record
    assert written["metrics"] == {"accuracy": 0.5, "curve": [1, 2]}
    assert written["mode"] == "full" and len(written["code_hash"]) == 16
    assert "tensorflow" in written["versions"]
    assert written["cpu"]["model"] and isinstance(written["cpu"]["features"], list)


def test_missing_results_folder_is_created_with_a_note(fake_root, capsys):
    results.record("99_try_things", {"a": 1}, "full")
    assert "did not exist" in capsys.readouterr().out


def test_smoke_mode_never_writes(fake_root):
    results.record("99_try_things", {"a": 1}, "smoke")
    assert not (fake_root / "results" / "99_try_things.json").exists()


def test_runner_timing_survives_a_rerun(fake_root):
    results.record("99_try_things", {"a": 1}, "full")
    path = fake_root / "results" / "99_try_things.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"runtime_s": {"full": 3.0}}))
    assert results.record("99_try_things", {"a": 2}, "full")["runtime_s"] == {"full": 3.0}


@pytest.mark.parametrize("metrics, error", [
    ({"a": float("nan")}, "non-finite"), ({"a": {"nested": 1}}, "flat"), ({}, "No metrics"),
])
def test_bad_metrics_are_refused(fake_root, metrics, error):
    with pytest.raises((ValueError, TypeError), match=error):
        results.record("99_try_things", metrics, "full")


def test_unknown_mode_or_notebook(fake_root):
    with pytest.raises(ValueError, match="Unknown mode"):
        results.record("99_try_things", {"a": 1}, "draft")
    with pytest.raises(FileNotFoundError, match="No notebook"):
        results.record("98_typo", {"a": 1}, "full")


def test_load_all(fake_root):
    assert results.load_all() == {}
    results.record("99_try_things", {"a": 1}, "full")
    assert list(results.load_all()) == ["99_try_things"]
