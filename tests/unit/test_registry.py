"""The model registry of notebook 13c: manifests, verification, refusals, the config it deploys."""

import json

import pytest

from helpers import registry
from helpers.serving import config

DATA = "a" * 64
CODE = "b" * 64


@pytest.fixture
def saved(tiny_served_model):
    """The SavedModel folder of the tiny classifier (version 1 of the fixture's base path)."""
    return tiny_served_model / "1"


def test_data_fingerprint_ignores_order_and_changes_with_any_checksum():
    one = registry.data_fingerprint({"train": "1" * 64, "test": "2" * 64})
    assert one == registry.data_fingerprint({"test": "2" * 64, "train": "1" * 64})
    assert one != registry.data_fingerprint({"train": "1" * 64, "test": "3" * 64})
    assert len(one) == 64
    with pytest.raises(registry.RegistryError):
        registry.data_fingerprint({})


def test_code_fingerprint_depends_on_content_and_relative_path(tmp_path):
    (tmp_path / "a").mkdir()
    first = tmp_path / "a" / "train.py"
    first.write_text("x = 1\n")
    before = registry.code_fingerprint([first], tmp_path)
    assert registry.code_fingerprint([first, first], tmp_path) == before      # duplicates ignored
    first.write_text("x = 2\n")
    assert registry.code_fingerprint([first], tmp_path) != before
    moved = tmp_path / "train.py"
    moved.write_text("x = 2\n")
    assert registry.code_fingerprint([moved], tmp_path) != registry.code_fingerprint([first], tmp_path)
    with pytest.raises(registry.RegistryError, match="does not exist"):
        registry.code_fingerprint([tmp_path / "missing.py"], tmp_path)


def test_a_notebook_counts_by_its_code_not_its_outputs(tmp_path):
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "train.ipynb"
    path.write_text(json.dumps(notebook))
    before = registry.code_fingerprint([path], tmp_path)
    notebook["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
    path.write_text(json.dumps(notebook))
    assert registry.code_fingerprint([path], tmp_path) == before
    notebook["cells"][0]["source"] = "x = 2"
    path.write_text(json.dumps(notebook))
    assert registry.code_fingerprint([path], tmp_path) != before


def test_git_commit_is_none_outside_a_repository(tmp_path):
    assert registry.git_commit(tmp_path) is None


def test_signatures_are_read_from_the_saved_model(saved, tmp_path):
    signatures = registry.read_signatures(saved)
    image = {"dtype": "DT_FLOAT", "shape": [-1, 28, 28, 1]}
    assert signatures["serving_default"]["inputs"] == {"image": image}
    assert signatures["serving_default"]["outputs"]["class_id"]["dtype"] == "DT_INT64"
    assert signatures["serving_default"]["outputs"]["probabilities"]["shape"] == [-1, 10]
    with pytest.raises(registry.RegistryError, match="not a SavedModel"):
        registry.read_signatures(tmp_path)
    with pytest.raises(registry.RegistryError, match="not a folder"):
        registry.read_signatures(tmp_path / "missing")
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff not a proto")
    with pytest.raises(registry.RegistryError, match="readable"):
        registry.read_signatures(tmp_path)


def test_register_numbers_copies_and_describes_versions(saved, tmp_path):
    first = registry.register(tmp_path, "m", saved, DATA, CODE, {"accuracy": 0.9}, description="one")
    second = registry.register(tmp_path, "m", saved, DATA, CODE, {"accuracy": 0.8})
    assert (first["version"], second["version"]) == (1, 2)
    assert registry.versions(tmp_path, "m") == [1, 2]
    assert (tmp_path / "m" / "2" / "saved_model.pb").is_file()
    manifest = registry.load_manifest(tmp_path, "m", 1)
    assert manifest["metrics"] == {"accuracy": 0.9} and manifest["data_sha256"] == DATA
    assert "saved_model.pb" in manifest["files"] and registry.MANIFEST_NAME not in manifest["files"]
    assert manifest["signatures"] == registry.read_signatures(saved)
    assert not list((tmp_path / "m").glob(".staging-*"))


def test_register_keeps_the_provenance_and_refuses_one_that_is_not_json(saved, tmp_path):
    subset = {"data_subset": {"split": "train", "images": 5000, "seed": 43, "sha256": "c" * 64}}
    registry.register(tmp_path, "m", saved, DATA, CODE, {}, provenance=subset)
    assert registry.load_manifest(tmp_path, "m", 1)["provenance"] == subset
    registry.register(tmp_path, "m", saved, DATA, CODE, {})
    assert registry.load_manifest(tmp_path, "m", 2)["provenance"] == {}
    with pytest.raises(registry.RegistryError, match="provenance"):
        registry.register(tmp_path, "m", saved, DATA, CODE, {}, provenance={"seed": object()})
    assert registry.versions(tmp_path, "m") == [1, 2]


def test_register_refuses_bad_input_and_writes_nothing(saved, tmp_path):
    registry.register(tmp_path, "m", saved, DATA, CODE, {}, version=3)
    with pytest.raises(registry.RegistryError, match="immutable"):
        registry.register(tmp_path, "m", saved, DATA, CODE, {}, version=3)
    with pytest.raises(registry.RegistryError, match="not a SavedModel"):
        registry.register(tmp_path, "m", tmp_path / "m", DATA, CODE, {})
    with pytest.raises(registry.RegistryError, match="SHA-256"):
        registry.register(tmp_path, "m", saved, "abc", CODE, {})
    with pytest.raises(registry.RegistryError, match="positive"):
        registry.register(tmp_path, "m", saved, DATA, CODE, {}, version=0)
    assert registry.versions(tmp_path, "m") == [3]
    assert registry.load_manifest(tmp_path, "m", 3)["version"] == 3


def test_load_manifest_names_what_is_wrong(saved, tmp_path):
    registry.register(tmp_path, "m", saved, DATA, CODE, {})
    registry.register(tmp_path, "m", saved, DATA, CODE, {})
    with pytest.raises(registry.RegistryError, match=r"version 9 is not in the registry .*\[1, 2\]"):
        registry.load_manifest(tmp_path, "m", 9)
    path = tmp_path / "m" / "1" / registry.MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["files"]["saved_model.pb"] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(registry.RegistryError, match="changed: saved_model.pb"):
        registry.load_manifest(tmp_path, "m", 1)
    assert registry.load_manifest(tmp_path, "m", 1, verify=False)["version"] == 1
    (tmp_path / "m" / "2" / "extra.txt").write_text("x")
    with pytest.raises(registry.RegistryError, match="added: extra.txt"):
        registry.load_manifest(tmp_path, "m", 2)
    path.write_text("{not json")
    with pytest.raises(registry.RegistryError, match="not valid JSON"):
        registry.load_manifest(tmp_path, "m", 1)
    path.write_text(json.dumps({"model": "m"}))
    with pytest.raises(registry.RegistryError, match="lacks version"):
        registry.load_manifest(tmp_path, "m", 1)
    path.unlink()
    with pytest.raises(registry.RegistryError, match="missing"):
        registry.load_manifest(tmp_path, "m", 1)


def test_listing_reports_a_bad_version_without_hiding_the_good_ones(saved, tmp_path):
    for _ in range(2):
        registry.register(tmp_path, "m", saved, DATA, CODE, {"accuracy": 0.5})
    (tmp_path / "m" / "2" / "saved_model.pb").write_bytes(b"changed")
    rows = {row["version"]: row for row in registry.listing(tmp_path, "m")}
    assert rows[1]["problem"] == "" and rows[1]["accuracy"] == 0.5 and rows[1]["data"] == DATA[:12]
    assert "changed: saved_model.pb" in rows[2]["problem"]


def test_deployment_writes_tf_serving_configs_and_refuses_bad_ones(saved, tmp_path):
    for _ in range(3):
        registry.register(tmp_path, "m", saved, DATA, CODE, {})
    path = tmp_path / "models.config"
    deployment = registry.Deployment(tmp_path, "m", path)
    assert not path.exists()                                  # nothing before the first apply
    deployment.apply([1], {"stable": 1})
    model = config.read_model_server_config(path).model_config_list.config[0]
    assert list(model.model_version_policy.specific.versions) == [1]
    assert dict(model.version_labels) == {"stable": 1}
    with pytest.raises(registry.RegistryError, match="Stage version 2 first"):
        deployment.start_canary(2)
    deployment.stage(2)
    assert deployment.versions == [1, 2] and deployment.labels == {"stable": 1}
    deployment.start_canary(2)
    assert deployment.labels == {"stable": 1, "canary": 2}
    deployment.rollback()
    assert deployment.versions == [1] and deployment.labels == {"stable": 1, "canary": 1}
    before = path.read_text()
    with pytest.raises(registry.RegistryError, match="version 7 is not in the registry"):
        deployment.apply([1, 7], {"stable": 1, "canary": 7})
    with pytest.raises(registry.RegistryError, match="does not load"):
        deployment.apply([1], {"stable": 1, "canary": 3})
    (tmp_path / "m" / "3" / "saved_model.pb").write_bytes(b"tampered")
    with pytest.raises(registry.RegistryError, match="does not match"):
        deployment.stage(3)
    assert path.read_text() == before and deployment.labels == {"stable": 1, "canary": 1}
    deployment.stage(2)
    deployment.start_canary(2)
    deployment.promote()
    assert deployment.versions == [2] and deployment.labels == {"stable": 2}
    assert [action for action, _, _ in deployment.history][-3:] == ["stage 2", "canary 2", "promote 2"]
    with pytest.raises(registry.RegistryError, match="No canary"):
        deployment.promote()
