import os
import sys
import types

import pytest

from helpers import env


@pytest.mark.parametrize("value, smoke, expected", [
    ("1", False, "smoke"), ("true", False, "smoke"), ("", False, "full"), ("0", True, "smoke"),
    ("0", False, "full"), ("no", False, "full"),
])
def test_resolve_mode(monkeypatch, value, smoke, expected):
    monkeypatch.setenv(env.SMOKE_ENV, value)
    assert env.resolve_mode(smoke) == expected


def test_resolve_mode_rejects_unknown_values(monkeypatch):
    monkeypatch.setenv(env.SMOKE_ENV, "fast")
    with pytest.raises(ValueError, match="COURSE_SMOKE must be 1 or 0"):
        env.resolve_mode(False)
    monkeypatch.delenv(env.SMOKE_ENV)
    with pytest.raises(ValueError, match="SMOKE must be True or False"):
        env.resolve_mode("yes")


def test_check_mode():
    assert env.check_mode("full") == "full"
    with pytest.raises(ValueError, match="Unknown mode 'quick'"):
        env.check_mode("quick")


def test_course_root_found_from_any_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(env.ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    root = env.course_root()
    assert (root / "helpers" / "env.py").is_file()


def test_course_root_explains_a_wrong_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(env.ROOT_ENV, str(tmp_path))
    with pytest.raises(env.CourseSetupError, match="pip install -e"):
        env.course_root()


def test_keras_flavour_switch_after_import_asks_for_restart(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")
    with pytest.raises(env.CourseSetupError, match="Restart the kernel"):
        env._set_keras_flavour("2")
    with pytest.raises(ValueError):
        env._set_keras_flavour("4")


def test_restart_needed_detects_upgraded_package(monkeypatch):
    fake = types.ModuleType("numpy")
    fake.__version__ = "0.0.1"
    monkeypatch.setitem(sys.modules, "numpy", fake)
    assert any("numpy 0.0.1 loaded" in line for line in env._restart_needed())


def test_report_line_mentions_versions():
    report = env.EnvReport("3.11.7", "2.21.0", "Keras 3.15.1 (keras)", "2.4.6", 2, 0, False)
    line = report.line()
    assert "TensorFlow 2.21.0" in line and "no GPU" in line and "2 CPU threads" in line


def test_captured_stderr_holds_back_native_output(capfd):
    import os

    with env.captured_stderr():
        os.write(2, b"native chatter\n")
    assert "native chatter" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), env.captured_stderr():
        os.write(2, b"diagnostics\n")
        raise RuntimeError("boom")
    assert "diagnostics" in capfd.readouterr().err


def test_in_colab_follows_the_colab_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert env.in_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert env.in_colab() is True


def test_keras_flavour_sets_the_legacy_switch_before_tensorflow(monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")
    env._set_keras_flavour("2")
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    env._set_keras_flavour("3")
    assert os.environ["TF_USE_LEGACY_KERAS"] == "0"
    with pytest.raises(ValueError):
        env.keras_module("4")
