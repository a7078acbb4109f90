"""helpers.deploycheck: schema validation, kustomize rendering, Dockerfile lint and facts."""

import sys
from pathlib import Path

import pytest

from helpers import deploycheck

SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_validate_document_accepts_valid_and_names_the_error():
    import yaml

    service = yaml.safe_load(SERVICE)
    assert deploycheck.validate_document(service) == ""
    service["spec"]["ports"][0]["port"] = "eighty"
    assert "spec.ports.0.port" in deploycheck.validate_document(service)
    service["spec"]["ports"][0]["port"] = 80
    service["spec"]["selectr"] = {"app": "web"}          # typo: only strict mode sees it
    assert "selectr" in deploycheck.validate_document(service)
    assert deploycheck.validate_document(service, strict=False) == ""
    assert "apiVersion and kind" in deploycheck.validate_document({"kind": "Service"})


def test_validate_text_checks_every_document():
    broken = SERVICE.replace("name: web", "name: web2").replace("port: 80,", "prt: 80,")
    checked = deploycheck.validate_text(SERVICE + "---\n" + broken, source="two.yaml")
    assert [c.name for c in checked] == ["web", "web2"]
    assert [c.valid for c in checked] == [True, False]
    assert checked[1].source == "two.yaml" and checked[1].kind == "Service"


def test_render_overlay_and_validate_tree(tmp_path):
    base, overlay = tmp_path / "base", tmp_path / "overlays" / "dev"
    base.mkdir()
    overlay.mkdir(parents=True)
    (base / "service.yaml").write_text(SERVICE)
    (base / "kustomization.yaml").write_text("resources: [service.yaml]\n")
    (overlay / "kustomization.yaml").write_text("namespace: dev\nresources: [../../base]\n")
    rendered = deploycheck.render_overlay(overlay)
    assert "namespace: dev" in rendered and "kind: Service" in rendered
    checked = deploycheck.validate_tree(tmp_path)
    assert len(checked) == 2 and all(c.valid for c in checked)      # base file + rendered overlay
    (overlay / "kustomization.yaml").write_text("resources: [../../missing]\n")
    with pytest.raises(RuntimeError, match="kustomize"):
        deploycheck.render_overlay(overlay)


def test_hadolint_reports_findings(tmp_path):
    bad, good = tmp_path / "Dockerfile.bad", tmp_path / "Dockerfile.good"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install curl\n")
    good.write_text('FROM ubuntu:24.04\nUSER 1000\nCMD ["sleep", "1"]\n')
    findings = deploycheck.hadolint(bad)
    assert any("DL3007" in line for line in findings)            # latest tag
    assert deploycheck.hadolint(good) == []


def test_image_facts(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM python:3.11 AS build\nUSER 1\nFROM python:3.11-slim\nARG SRC=out/model\n'
                          'COPY --chown=1:1 ${SRC} /models/m\nUSER 1000:1000\nENTRYPOINT ["python"]\n'
                          'CMD ["-m", "http.server"]\n')
    facts = deploycheck.image_facts(dockerfile)
    assert facts.base_image == "python:3.11-slim"
    assert facts.copies == [("out/model", "/models/m")]
    assert facts.command == ["python", "-m", "http.server"]
    assert facts.pinned and not facts.runs_as_root
    dockerfile.write_text("FROM python\nCMD python -m http.server\n")
    with pytest.raises(ValueError, match="exec form"):
        deploycheck.image_facts(dockerfile)
    dockerfile.write_text("FROM python:latest\n")
    facts = deploycheck.image_facts(dockerfile)
    assert not facts.pinned and facts.runs_as_root
    assert deploycheck.ImageFacts("registry:5000/img", "root", [], []).pinned is False
    assert deploycheck.ImageFacts("img@sha256:" + "0" * 64, "0", [], []).pinned


def test_flag_values_and_localize():
    assert deploycheck.flag_values(["bin", "--a=1", "--b", "--c=x=y"]) == {"a": "1", "b": "true", "c": "x=y"}
    flags, dropped = deploycheck.localize(
        ["--port=8500", "--model_name=m", "--model_base_path=/models/m", "--host=0.0.0.0", "--odd=1"],
        Path("/data/m"), accepted={"model_name", "model_base_path", "port", "host"})
    assert flags == ["--model_name=m", "--model_base_path=/data/m"]
    assert set(dropped) == {"port", "host", "odd"} and "not accepted" in dropped["odd"]
    flags, dropped = deploycheck.localize(
        ["--batching_parameters_file=/config/b.txt", "--rest_api_num_threads=4"], Path("/data/m"),
        accepted={"batching_parameters_file"}, files={"batching_parameters_file": Path("/here/b.txt")})
    assert flags == ["--batching_parameters_file=/here/b.txt"] and set(dropped) == {"rest_api_num_threads"}
    with pytest.raises(ValueError):
        deploycheck.localize(["positional"], Path("/m"), set())


def test_accepted_flags_reads_help():
    fake = (sys.executable, "-c", "print('usage: x [--alpha A] [--beta_two]  --help')")
    assert deploycheck.accepted_flags(fake) == {"alpha", "beta_two"}
    with pytest.raises(RuntimeError):
        deploycheck.accepted_flags((sys.executable, "-c", "raise SystemExit(3)"))
