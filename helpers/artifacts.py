"""Artifact manifests: the SHA-256 of every exported file, verified before anything is loaded.

A deployment pipeline should refuse a model file that differs from what was exported (a
truncated copy, a swapped file, tampering). ``write_manifest`` records the hashes next to the
files; ``verify_manifest`` checks them and names every file that is changed, missing or unlisted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST_NAME = "MANIFEST.sha256.json"


class TamperedArtifactError(RuntimeError):
    """An exported file does not match the manifest written when it was exported."""


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (model files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _listed_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def write_manifest(folder: Path) -> Path:
    """Hash every file under ``folder`` into ``folder/MANIFEST.sha256.json``; return its path."""
    folder = Path(folder)
    entries = {p.relative_to(folder).as_posix(): sha256_file(p) for p in _listed_files(folder)}
    if not entries:
        raise ValueError(f"Nothing to list in {folder}")
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps({"algorithm": "sha256", "files": entries}, indent=2) + "\n")
    return path


def verify_manifest(folder: Path) -> dict[str, str]:
    """Check every file under ``folder`` against its manifest; return the manifest's entries.

    Raises :class:`TamperedArtifactError` naming each file whose hash differs, that is missing,
    or that is present but not listed; ``FileNotFoundError`` when there is no manifest.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(f"No {MANIFEST_NAME} in {folder}: refusing unverified artifacts")
    expected = json.loads(manifest_path.read_text())["files"]
    present = {p.relative_to(folder).as_posix() for p in _listed_files(folder)}
    problems = [f"{name}: missing" for name in sorted(set(expected) - present)]
    problems += [f"{name}: not in the manifest" for name in sorted(present - set(expected))]
    problems += [f"{name}: SHA-256 differs" for name in sorted(set(expected) & present)
                 if sha256_file(folder / name) != expected[name]]
    if problems:
        raise TamperedArtifactError(f"{folder} does not match its manifest: " + "; ".join(problems))
    return expected
