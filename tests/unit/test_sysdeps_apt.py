"""helpers.sysdeps for programs installed with apt (Chromium, for the site test), with fake apt tools
on PATH that record how they were called. Prometheus's path: tests/unit/test_prometheus.py."""

import pytest

from helpers import sysdeps


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """apt-get, apt-cache and dpkg stand-ins; apt-cache has a candidate once apt-get update ran."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    scripts = {
        "apt-get": f'echo "apt-get $*" >> {log}\n[ "$1" = update ] && touch {tmp_path}/updated\n'
                   f'[ "$1" = install ] && printf "#!/bin/sh\\necho Chromium 1.2.3\\n" > {bin_dir}/chromium '
                   f'&& chmod +x {bin_dir}/chromium\nexit 0',
        "apt-cache": f'[ -e {tmp_path}/updated ] && echo "  Candidate: 1.2.3" || echo "  Candidate: (none)"',
        "dpkg": "exit 0",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(sysdeps.shutil, "which", lambda name: (
        str(bin_dir / name) if (bin_dir / name).exists() else None))
    return log


def test_chromium_is_looked_for_on_path_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    cached = sysdeps.cache_dir(tmp_path) / "chromium" / "usr" / "bin" / "chromium"
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\n")
    cached.chmod(0o755)
    assert sysdeps.find("chromium", root=tmp_path) is None    # an unpacked copy lacks its libraries
    assert sysdeps.find("promtool", root=tmp_path) is None


def test_ensure_installs_chromium_with_apt_after_updating_the_lists(fake_apt, monkeypatch):
    monkeypatch.setattr(sysdeps.os, "geteuid", lambda: 0)
    path = sysdeps.ensure("chromium")
    assert path.endswith("/chromium") and sysdeps.version(path) == "Chromium 1.2.3"
    assert fake_apt.read_text().splitlines() == [
        "apt-get update -qq", "apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei"]


def test_installing_needs_root_and_says_how(fake_apt, monkeypatch):
    (fake_apt.parent / "updated").touch()                      # lists present, not root
    monkeypatch.setattr(sysdeps.os, "geteuid", lambda: 1000)
    with pytest.raises(sysdeps.MissingProgram, match=r"chromium is not installed.*needs root.*chromium\.org"):
        sysdeps.ensure("chromium")
    assert not fake_apt.exists(), "apt-get was not called"


def test_without_apt_chromium_is_reported_missing_with_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(sysdeps.MissingProgram, match=r"chromium is not installed.*apt-get and dpkg"):
        sysdeps.ensure("chromium")
