import importlib.metadata
import sys
import types

import pytest

from helpers import env


def test_colab_requirements_split_and_tf_matched(tmp_path):
    (tmp_path / env.COLAB_EXTRAS_FILE).write_text(
        "# comment\nonnx==1.22.0  # why\n\ntensorflow-model-optimization==0.8.1  # install: --no-deps\n")
    with_deps, no_deps = env.colab_requirements(tmp_path, "2.20.0")
    assert with_deps == ["onnx==1.22.0", "tensorflow-serving-api~=2.20.0"]
    assert no_deps == ["tensorflow-model-optimization==0.8.1"]


def test_the_shipped_colab_requirements_are_pinned():
    with_deps, no_deps = env.colab_requirements(env.course_root(), "2.20.0")
    assert "tensorflow-model-optimization==0.8.1" in no_deps
    for requirement in with_deps + no_deps:          # every extra has a version constraint
        assert any(op in requirement for op in ("==", ">=", "~=")), requirement
    names = " ".join(with_deps + no_deps)
    for untouchable in ("tensorflow==", "keras==", "numpy", "tf-keras", "protobuf"):
        assert untouchable not in names               # Colab's own stack is never reinstalled


def test_missing_requirements_checks_versions(monkeypatch):
    versions = {"present": "1.2.0", "old": "0.9"}

    def version(name):
        if name not in versions:
            raise importlib.metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert env.missing_requirements(["present==1.2.0", "old>=1.0", "absent==3", "present~=1.2"]) \
        == ["old>=1.0", "absent==3"]


def test_install_colab_extras_installs_only_what_is_missing(monkeypatch, tmp_path, capsys):
    (tmp_path / env.COLAB_EXTRAS_FILE).write_text("a==1\nb==2  # install: --no-deps\n")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.20.0")
    calls = []
    monkeypatch.setattr(env, "_pip_install", lambda reqs, *opts: calls.append((reqs, opts)))
    monkeypatch.setattr(env, "missing_requirements", lambda reqs: [r for r in reqs if r != "a==1"])
    assert env.install_colab_extras(tmp_path) == ["tensorflow-serving-api~=2.20.0", "b==2"]
    assert calls == [(["tensorflow-serving-api~=2.20.0"], ()), (["b==2"], ("--no-deps",))]
    monkeypatch.setattr(env, "missing_requirements", lambda reqs: [])
    assert env.install_colab_extras(tmp_path) == []
    assert "already installed" in capsys.readouterr().out


def test_restart_check_uses_real_module_names(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")          # setup() sets it; keep it restored
    fake = types.ModuleType("google.protobuf")
    fake.__version__ = "5.29.5"
    monkeypatch.setitem(sys.modules, "google.protobuf", fake)
    stale = env._restart_needed()
    assert any(line.startswith("google.protobuf 5.29.5 loaded") for line in stale)
    with pytest.raises(env.CourseSetupError, match="Runtime → Restart session"):
        monkeypatch.setattr(env, "_restart_needed", lambda: ["google.protobuf 5.29.5 loaded"])
        env.setup()
