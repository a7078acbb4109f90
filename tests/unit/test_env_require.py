"""helpers.env.pinned_requirements / require_packages: one notebook's extra packages at the pinned
versions, installed in Colab, a clear error elsewhere."""

import pytest

from helpers import env


def _root(tmp_path, text):
    (tmp_path / "requirements.txt").write_text(text)
    return tmp_path


def test_pinned_requirements_reads_the_pins_with_extras_and_skips_options(tmp_path):
    root = _root(tmp_path, "-e .\n# comment\nray[serve]==2.60.0  # why\nLocust==2.47.0\n")
    assert env.pinned_requirements(root, ["ray[serve]", "locust"]) == ["ray[serve]==2.60.0", "Locust==2.47.0"]
    assert env.pinned_requirements(root, ["ray"]) == ["ray[serve]==2.60.0"]
    with pytest.raises(KeyError, match="numpy is not pinned"):
        env.pinned_requirements(root, ["numpy"])


def test_the_course_pins_what_notebook_12_needs():
    pins = env.pinned_requirements(env.course_root(), ["ray[serve]", "locust", "kubernetes-validate"])
    assert all("==" in pin for pin in pins)


def test_require_packages_outside_colab_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(env, "course_root", lambda: _root(tmp_path, "pytest==0.0.1\npackaging>=1\n"))
    monkeypatch.setattr(env, "in_colab", lambda: False)
    installs = []
    monkeypatch.setattr(env, "_pip_install", lambda reqs, *o: installs.append(reqs))
    with pytest.raises(env.CourseSetupError, match=r"pytest==0\.0\.1"):
        env.require_packages(["pytest"])
    assert env.require_packages(["packaging"]) == []          # satisfied: nothing to do
    assert installs == [[]]


def test_require_packages_in_colab_installs_only_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(env, "course_root", lambda: _root(tmp_path, "pytest==0.0.1\npackaging>=1\n"))
    monkeypatch.setattr(env, "in_colab", lambda: True)
    installs = []
    monkeypatch.setattr(env, "_pip_install", lambda reqs, *o: installs.append(list(reqs)))
    assert env.require_packages(["pytest", "packaging"]) == ["pytest==0.0.1"]
    assert installs == [["pytest==0.0.1"]]
