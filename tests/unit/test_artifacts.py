import hashlib
import json

import pytest

from helpers import artifacts


@pytest.fixture
def export_folder(tmp_path):
    (tmp_path / "variables").mkdir()
    (tmp_path / "saved_model.pb").write_bytes(b"graph")
    (tmp_path / "variables" / "variables.data").write_bytes(b"weights" * 100)
    artifacts.write_manifest(tmp_path)
    return tmp_path


def test_sha256_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1000)
    assert artifacts.sha256_file(path, chunk_size=7) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_untouched_folder_verifies(export_folder):
    assert set(artifacts.verify_manifest(export_folder)) == {"saved_model.pb",
                                                            "variables/variables.data"}


def test_manifest_records_the_sha256_of_every_file_but_itself(export_folder):
    manifest = json.loads((export_folder / artifacts.MANIFEST_NAME).read_text())
    assert manifest == {"algorithm": "sha256", "files": {
        "saved_model.pb": hashlib.sha256(b"graph").hexdigest(),
        "variables/variables.data": hashlib.sha256(b"weights" * 100).hexdigest()}}
    assert artifacts.verify_manifest(export_folder) == manifest["files"]
    assert artifacts.write_manifest(export_folder) == export_folder / artifacts.MANIFEST_NAME
    assert json.loads((export_folder / artifacts.MANIFEST_NAME).read_text()) == manifest   # rewritable


def test_every_problem_is_named_at_once(export_folder):
    (export_folder / "saved_model.pb").write_bytes(b"other graph")
    (export_folder / "variables" / "variables.data").unlink()
    (export_folder / "extra.py").write_text("x")
    with pytest.raises(artifacts.TamperedArtifactError) as raised:
        artifacts.verify_manifest(export_folder)
    message = str(raised.value)
    assert message.count(": missing") == 1 and "not in the manifest" in message and "differs" in message


@pytest.mark.parametrize("tamper, message", [
    (lambda f: (f / "saved_model.pb").write_bytes(b"graph!"), "saved_model.pb: SHA-256 differs"),
    (lambda f: (f / "variables" / "variables.data").unlink(), "variables/variables.data: missing"),
    (lambda f: (f / "extra.py").write_text("x"), "extra.py: not in the manifest"),
])
def test_tampering_is_named(export_folder, tamper, message):
    tamper(export_folder)
    with pytest.raises(artifacts.TamperedArtifactError, match=message):
        artifacts.verify_manifest(export_folder)


def test_missing_manifest_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="refusing unverified"):
        artifacts.verify_manifest(tmp_path)
    with pytest.raises(ValueError, match="Nothing to list"):
        artifacts.write_manifest(tmp_path)
