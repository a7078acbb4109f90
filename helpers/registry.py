"""A versioned model registry on disk, in TF Serving's layout, and the config file that deploys it.

    <registry>/<model>/<version>/saved_model.pb, variables/, ...   (what TF Serving loads)
    <registry>/<model>/<version>/registry_manifest.json            (what this module adds)

:func:`register` copies a SavedModel into the next (or a given) version folder and writes its
manifest: the data hash (:func:`data_fingerprint` of the data set's content checksums), the code
hash (:func:`code_fingerprint`: SHA-256 over the files that trained the model, by path and
content, so it works without git; :func:`git_commit` adds the commit where there is one), the
model's metrics, its serving signatures read from ``saved_model.pb``, the creation time and the
SHA-256 of every file. Versions are immutable: a version that exists is never overwritten, and
a copy is written to a hidden staging folder and renamed, so a server polling the folder never
sees half a version. :func:`load_manifest` verifies the files against the manifest and names
what is wrong.

:class:`Deployment` owns the ``--model_config_file`` of one model: which versions TF Serving
loads (``model_version_policy { specific { ... } }``) and where the labels ``stable`` and
``canary`` point (``version_labels``). It refuses a config that names a version the registry
does not hold (or that fails verification) before it touches the file, and replaces the file in
one step. TF Serving assigns a label only to a version that is already loaded, so a canary takes
two edits (:meth:`Deployment.stage`, then :meth:`Deployment.start_canary` once the server reports
the version ``AVAILABLE``); :meth:`Deployment.rollback` points ``canary`` back at ``stable`` and
unloads the candidate in one edit; :meth:`Deployment.promote` makes the canary the new stable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from helpers.artifacts import sha256_file

MANIFEST_NAME = "registry_manifest.json"
MANIFEST_KEYS = ("model", "version", "created", "data_sha256", "code_sha256", "metrics", "signatures",
                 "files")


class RegistryError(ValueError):
    """A registry operation refused, with the file or version at fault in the message."""


def data_fingerprint(checksums: Mapping[str, str]) -> str:
    """SHA-256 identifying a data set by its files' content checksums (``data.SHA256``):
    independent of the order of the mapping, different as soon as one file's checksum differs."""
    if not checksums:
        raise RegistryError("No checksums to fingerprint")
    text = "".join(f"{name}  {digest}\n" for name, digest in sorted(checksums.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def code_fingerprint(files: Iterable[Path], root: Path) -> str:
    """SHA-256 over ``files`` (their paths relative to ``root`` and their contents), sorted by path:
    the same code gives the same hash on any machine and without git. A notebook counts by its
    code cells only (``nbtools.code_hash``), so executing it again does not change the hash."""
    from helpers import nbtools

    digest = hashlib.sha256()
    paths = sorted({Path(f).resolve() for f in files})
    if not paths:
        raise RegistryError("No code files to fingerprint")
    for path in paths:
        if not path.is_file():
            raise RegistryError(f"Code file {path} does not exist")
        content = nbtools.code_hash(path) if path.suffix == ".ipynb" else sha256_file(path)
        digest.update(f"{path.relative_to(Path(root).resolve()).as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


def git_commit(root: Path) -> str | None:
    """``HEAD``'s commit of the git repository at ``root`` (suffixed ``-dirty`` when tracked files
    differ from it), or ``None`` where there is no git or no repository."""
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        commit = git("rev-parse", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def read_signatures(saved_model_dir: Path) -> dict:
    """The serving signatures of the SavedModel in ``saved_model_dir``, read from ``saved_model.pb``:
    ``{signature: {"inputs"|"outputs": {name: {"dtype": "DT_FLOAT", "shape": [-1, 28, 28, 1]}}}}``.
    ``RegistryError`` if the folder holds no readable SavedModel."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    if not Path(saved_model_dir).is_dir():
        raise RegistryError(f"{saved_model_dir} is not a folder")
    path = Path(saved_model_dir) / "saved_model.pb"
    if not path.is_file():
        raise RegistryError(f"{saved_model_dir} is not a SavedModel: it has no saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(path.read_bytes())
    except DecodeError as error:
        raise RegistryError(f"{path} is not a readable SavedModel: {error}") from None
    if not saved.meta_graphs:
        raise RegistryError(f"{path} holds no MetaGraph")

    def tensors(mapping):
        return {name: {"dtype": types_pb2.DataType.Name(info.dtype),
                       "shape": [int(d.size) for d in info.tensor_shape.dim]}
                for name, info in sorted(mapping.items())}

    signatures = {name: {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}
                  for name, sig in sorted(saved.meta_graphs[0].signature_def.items())
                  if not name.startswith("__")}
    if not signatures:
        raise RegistryError(f"{path} has no serving signature")
    return signatures


def _file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST_NAME}


def versions(registry_dir: Path, model_name: str) -> list[int]:
    """The version numbers registered for ``model_name`` (numeric folders), ascending."""
    base = Path(registry_dir) / model_name
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def register(registry_dir: Path, model_name: str, saved_model_dir: Path, data_sha256: str,
             code_sha256: str, metrics: Mapping[str, float], version: int | None = None,
             description: str = "", git: str | None = None, provenance: Mapping | None = None) -> dict:
    """Copy the SavedModel in ``saved_model_dir`` into ``<registry_dir>/<model_name>/<version>/``
    (the next free number if ``version`` is None) with its manifest; return the manifest.

    ``code_sha256`` is the hash of the code *at registration*; ``provenance`` (JSON-serialisable,
    stored as the manifest's ``provenance``) says what only the trainer knows, e.g. the code hash
    its own run recorded, or which subset of the data (split, size, seed, content hash) it used.

    Refuses (``RegistryError``, nothing written) a folder that is not a SavedModel, an existing
    version, a non-positive version, hashes that are not 64 hex digits, or a provenance that is
    not a JSON object.
    """
    for name, value in (("data_sha256", data_sha256), ("code_sha256", code_sha256)):
        if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
            raise RegistryError(f"{name} must be a SHA-256 (64 hex digits), got {value!r}")
    try:
        provenance = json.loads(json.dumps(dict(provenance or {})))
    except (TypeError, ValueError) as error:
        raise RegistryError(f"provenance must be a JSON object: {error}") from None
    signatures = read_signatures(saved_model_dir)          # refuses a folder that is no SavedModel
    base = Path(registry_dir) / model_name
    version = (max(versions(registry_dir, model_name), default=0) + 1) if version is None else int(version)
    if version < 1:
        raise RegistryError(f"Versions are positive integers, got {version}")
    target = base / str(version)
    if target.exists():
        raise RegistryError(f"{model_name} version {version} exists at {target}: versions are "
                            "immutable, register a new one")
    staging = base / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(saved_model_dir, staging)
        manifest = {"model": model_name, "version": version,
                    "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "description": description, "data_sha256": data_sha256, "code_sha256": code_sha256,
                    "git_commit": git, "provenance": provenance,
                    "metrics": {k: float(v) for k, v in metrics.items()},
                    "signatures": signatures, "files": _file_hashes(staging)}
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def load_manifest(registry_dir: Path, model_name: str, version: int, verify: bool = True) -> dict:
    """The manifest of a registered version; with ``verify``, after checking every file's SHA-256.

    ``RegistryError`` naming the file: no such version, no manifest, a manifest that is not JSON
    or lacks a field, or files changed, missing or added since registration.
    """
    folder = Path(registry_dir) / model_name / str(int(version))
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        known = versions(registry_dir, model_name)
        raise RegistryError(f"{model_name} version {version} is not in the registry {registry_dir} "
                            f"(registered: {known or 'none'})")
    if not path.is_file():
        raise RegistryError(f"{path} is missing: {folder} was not written by register()")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RegistryError(f"{path} is not valid JSON: {error}") from None
    missing = [k for k in MANIFEST_KEYS if k not in manifest] if isinstance(manifest, dict) else MANIFEST_KEYS
    if missing:
        raise RegistryError(f"{path} lacks {', '.join(missing)}")
    if manifest["version"] != int(version) or manifest["model"] != model_name:
        raise RegistryError(f"{path} describes {manifest['model']} version {manifest['version']}, "
                            f"not {model_name} version {version}")
    if verify:
        actual, expected = _file_hashes(folder), manifest["files"]
        changed = sorted(n for n in set(actual) & set(expected) if actual[n] != expected[n])
        problems = [f"{label}: {', '.join(names)}" for label, names in (
            ("changed", changed), ("missing", sorted(set(expected) - set(actual))),
            ("added", sorted(set(actual) - set(expected)))) if names]
        if problems:
            raise RegistryError(f"{model_name} version {version} does not match {path.name} ("
                                + "; ".join(problems) + "): do not serve it, register a new version")
    return manifest


def listing(registry_dir: Path, model_name: str) -> list[dict]:
    """One row per registered version (verified): version, created, short hashes, metrics, and
    ``problem`` (empty when the version verifies). A bad version is listed, not raised."""
    rows = []
    for version in versions(registry_dir, model_name):
        try:
            m = load_manifest(registry_dir, model_name, version)
            files = hashlib.sha256(json.dumps(m["files"], sort_keys=True).encode()).hexdigest()
            rows.append({"version": version, "created": m["created"], "data": m["data_sha256"][:12],
                         "code": m["code_sha256"][:12], "files": files[:12], **m["metrics"],
                         "description": m.get("description", ""), "problem": ""})
        except RegistryError as error:
            rows.append({"version": version, "problem": str(error)})
    return rows


class Deployment:
    """The ``--model_config_file`` of ``model_name``, served from ``registry_dir``.

    ``versions`` (loaded by the server) and ``labels`` (``{"stable": 1, "canary": 2}``) are the
    state last written (nothing is written before the first :meth:`apply`); every change is
    checked against the registry first and ``history`` keeps ``(action, versions, labels)`` of each
    write. Start a server on a config without labels (``apply([1], {})``) and label once the
    version is available: the course's server, like TF Serving on a reload, refuses a label on a
    version that is not loaded yet.
    """

    def __init__(self, registry_dir: Path, model_name: str, config_path: Path):
        self.registry_dir, self.model_name = Path(registry_dir), model_name
        self.config_path = Path(config_path)
        self.versions: list[int] = []
        self.labels: dict[str, int] = {}
        self.history: list[tuple[str, list[int], dict]] = []

    def apply(self, versions: Iterable[int], labels: Mapping[str, int], action: str = "apply") -> str:
        """Write the config serving ``versions`` with ``labels``; return its text. ``RegistryError``
        (the file untouched) if a label points outside ``versions`` or a version is not registered
        or fails verification."""
        from helpers.serving import config

        versions = sorted({int(v) for v in versions})
        labels = {str(k): int(v) for k, v in labels.items()}
        stray = {k: v for k, v in labels.items() if v not in versions}
        if stray:
            raise RegistryError(f"Labels {stray} point at versions the config does not load ({versions})")
        for version in versions:
            load_manifest(self.registry_dir, self.model_name, version)
        text = config.model_config_text([{"name": self.model_name, "policy": versions, "labels": labels,
                                          "base_path": (self.registry_dir / self.model_name).resolve()}])
        staging = self.config_path.with_name(self.config_path.name + ".new")
        staging.write_text(text)
        staging.replace(self.config_path)
        self.versions, self.labels = versions, labels
        self.history.append((action, versions, dict(labels)))
        return text

    def stage(self, version: int) -> str:
        """Edit 1 of a canary: load ``version`` next to the labelled versions, no label yet."""
        return self.apply([*self.labels.values(), version], self.labels, f"stage {version}")

    def start_canary(self, version: int) -> str:
        """Edit 2: label the staged ``version`` ``canary`` (TF Serving refuses it until loaded)."""
        if version not in self.versions:
            raise RegistryError(f"Stage version {version} first: the server labels loaded versions only")
        return self.apply(self.versions, {**self.labels, "canary": version}, f"canary {version}")

    def promote(self) -> str:
        """The canary becomes ``stable``; the old stable version is unloaded."""
        if "canary" not in self.labels:
            raise RegistryError("No canary to promote")
        version = self.labels["canary"]
        return self.apply([version], {"stable": version}, f"promote {version}")

    def rollback(self) -> str:
        """``canary`` points back at ``stable`` and the candidate is unloaded, in one edit."""
        stable = self.labels["stable"]
        return self.apply([stable], {"stable": stable, "canary": stable}, "rollback")
