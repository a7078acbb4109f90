"""The deploy/ folder: every manifest and rendered overlay valid against the Kubernetes schemas
(strict), the conventions the course teaches, both Dockerfiles lint-clean and well-formed, and
the command each image runs executed for real, outside a container.

No Docker engine here: the course-server image's ENTRYPOINT + CMD run as they are, with only the
ports and ``--host`` replaced (free ports on 127.0.0.1) and ``--model_base_path`` pointed at a
tiny exported model. The TF Serving image's binary cannot be installed here, so its flags run
with the course server in place of ``tensorflow_model_server``; the flags the course server
refuses are dropped, and the test asserts exactly which (the TF thread-pool flags).
"""

import copy
import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from helpers import deploycheck
from helpers.serving import launcher

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILES = {"tf-serving": DEPLOY / "Dockerfile.tf-serving",
               "course-server": DEPLOY / "Dockerfile.course-server"}


def _rendered(overlay: str) -> dict:
    text = deploycheck.render_overlay(DEPLOY / "k8s" / "overlays" / overlay)
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text) if doc}


@pytest.fixture(scope="module")
def overlays():
    return {name: _rendered(name) for name in ("staging", "production")}


def test_every_manifest_and_rendered_overlay_is_valid_strictly():
    checked = deploycheck.validate_tree(DEPLOY / "k8s")
    assert [f"{c.source} {c.kind}: {c.error}" for c in checked if not c.valid] == []
    sources = {c.source for c in checked}
    assert {"kustomize overlays/staging", "kustomize overlays/production"} <= sources
    objects = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    base = [path for path in (DEPLOY / "k8s" / "base").glob("*.yaml") if path.name != "kustomization.yaml"]
    assert {c.kind for c in checked if c.source.startswith("base/")} == objects and len(base) == 4
    for overlay in ("staging", "production"):          # every rendered document, the ConfigMap too
        kinds = [c.kind for c in checked if c.source == f"kustomize overlays/{overlay}"]
        assert sorted(kinds) == sorted(objects | {"ConfigMap"}), overlay
    assert len(checked) == len(base) + 2 * 5


def test_a_typo_and_a_wrong_type_fail_validation():
    hpa = yaml.safe_load((DEPLOY / "k8s/base/hpa.yaml").read_text())
    typo = copy.deepcopy(hpa)
    target = typo["spec"]["metrics"][0]["resource"]["target"]
    target["averageUtilisation"] = target.pop("averageUtilization")
    assert "averageUtilisation" in deploycheck.validate_document(typo)
    assert deploycheck.validate_document(typo, strict=False) == ""      # why strict mode matters
    deployment = yaml.safe_load((DEPLOY / "k8s/base/deployment.yaml").read_text())
    deployment["spec"]["revisionHistoryLimit"] = "five"
    assert "is not of type 'integer'" in deploycheck.validate_document(deployment)


def test_deployment_follows_the_course_conventions(overlays):
    for name, docs in overlays.items():
        deployment, pod = docs["Deployment"], docs["Deployment"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models/fashion"
        assert container["startupProbe"]["httpGet"]["path"] == "/v1/models/fashion"
        startup = container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"]
        assert startup >= 120                  # a slow model load is not a restart loop
        assert "httpGet" in container["livenessProbe"]      # a TCP connect passes for a hung server
        assert container["readinessProbe"]["timeoutSeconds"] >= 3
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop < pod["terminationGracePeriodSeconds"] <= pre_stop + 10   # TF Serving ignores SIGTERM
        assert "replicas" not in deployment["spec"]          # the HPA owns the count
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert docs["PodDisruptionBudget"]["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        limits, requests_ = container["resources"]["limits"], container["resources"]["requests"]
        assert limits["cpu"] == requests_["cpu"] and str(limits["cpu"]).isdigit()     # whole cores
        flags = deploycheck.flag_values(container["args"])
        for pool in ("intra", "inter"):
            assert flags[f"tensorflow_{pool}_op_parallelism"] == "$(CPU_LIMIT)"
        env = {e["name"]: e for e in container["env"]}
        assert env["CPU_LIMIT"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
        assert flags["model_base_path"] == f"/models/{flags['model_name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True
        spread = pod["topologySpreadConstraints"][0]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["whenUnsatisfiable"] == "ScheduleAnyway"      # a dark zone must not block pods
        assert spread["matchLabelKeys"] == ["pod-template-hash"]
        assert flags["batching_parameters_file"] == "/config/batching_parameters.txt"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for kind in ("Service", "PodDisruptionBudget"):
            selector = docs[kind]["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert selector.items() <= labels.items(), (name, kind)
        hpa = docs["HorizontalPodAutoscaler"]["spec"]
        assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
        assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]      # >= 2: a drain never empties it
        assert hpa["behavior"]["scaleUp"]["selectPolicy"] == "Max"


def test_the_overlays_differ_where_environments_differ(overlays):
    staging, production = overlays["staging"], overlays["production"]
    assert staging["Deployment"]["metadata"]["namespace"] != production["Deployment"]["metadata"]["namespace"]
    assert staging["HorizontalPodAutoscaler"]["spec"]["minReplicas"] < \
        production["HorizontalPodAutoscaler"]["spec"]["minReplicas"]
    cpu = {n: int(d["Deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
           for n, d in overlays.items()}
    assert cpu["staging"] < cpu["production"]
    assert staging["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] < \
        production["HorizontalPodAutoscaler"]["spec"]["maxReplicas"]
    assert production["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 3     # one per zone


def test_serving_requirements_pin_what_requirements_txt_pins():
    def pins(path):
        lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
        return dict(line.split("==") for line in lines if "==" in line)
    serve, course = pins(DEPLOY / "requirements-serve.txt"), pins(ROOT / "requirements.txt")
    assert {"tensorflow", "fastapi", "uvicorn", "grpcio", "tensorflow-serving-api"} <= serve.keys()
    assert {name: course.get(name) for name in serve} == serve


def _cpu_limit(deployment: dict) -> int:
    return int(deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])


def _mounted_batching(docs: dict):
    """The batching parameters the rendered Deployment's pod reads: the ConfigMap mounted at the
    folder of its --batching_parameters_file flag, that file's key."""
    from helpers.serving import batching

    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    flag = Path(deploycheck.flag_values(container["args"])["batching_parameters_file"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(flag.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = docs["ConfigMap"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]     # kustomize's hashed name
    return batching.parse_batching_parameters(config_map["data"][flag.name])


def test_each_overlay_mounts_batching_threads_matching_its_cpu_limit(overlays):
    threads = {}
    for name, docs in overlays.items():
        params = _mounted_batching(docs)
        threads[name] = params.num_batch_threads
        assert params.num_batch_threads == _cpu_limit(docs["Deployment"]), name
        assert params.batch_timeout_micros > 0, name     # 0 µs: no batch ever fills
    assert threads["staging"] != threads["production"]     # not one file for both


def test_the_base_and_the_images_read_the_same_batching_file_for_their_2_cpus():
    from helpers.serving import batching

    base = {doc["kind"]: doc for doc in yaml.safe_load_all(deploycheck.render_overlay(DEPLOY / "k8s/base"))
            if doc}
    image = batching.read_batching_parameters(DEPLOY / "batching_parameters.txt")
    assert _mounted_batching(base) == image
    assert image.num_batch_threads == _cpu_limit(base["Deployment"]) == 2
    flags = deploycheck.flag_values(deploycheck.image_facts(DOCKERFILES["tf-serving"]).command)
    assert flags["tensorflow_intra_op_parallelism"] == str(image.num_batch_threads)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfiles_are_lint_clean_pinned_non_root_and_copy_the_model_where_the_flags_point(name):
    assert deploycheck.hadolint(DOCKERFILES[name]) == []
    facts = deploycheck.image_facts(DOCKERFILES[name])
    assert facts.pinned and not facts.runs_as_root
    flags = deploycheck.flag_values(facts.command)
    copied = {destination for _, destination in facts.copies}
    assert flags["model_base_path"] in copied and flags["batching_parameters_file"] in copied
    if name == "tf-serving":
        tf_minor = ".".join(importlib.metadata.version("tensorflow").split(".")[:2])
        assert facts.base_image.startswith(f"tensorflow/serving:{tf_minor}.")
        assert facts.command[0] == "/usr/bin/tensorflow_model_server"
    else:
        assert facts.command[:3] == ["python", "-m", "helpers.serving"]


@pytest.mark.parametrize("name, refused", [
    ("course-server", set()),
    ("tf-serving", {"tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
                    "rest_api_num_threads"}),
])
def test_the_image_command_serves_the_model(name, refused, tiny_served_model):
    facts = deploycheck.image_facts(DOCKERFILES[name])
    program = 3 if name == "course-server" else 1
    flags, dropped = deploycheck.localize(facts.command[program:], tiny_served_model,
                                          deploycheck.accepted_flags(), files=deploycheck.IMAGE_FILES)
    assert {flag for flag, why in dropped.items() if "not accepted" in why} == refused
    model = deploycheck.flag_values(flags)["model_name"]
    with launcher.ModelServer(model, None, flags) as server:
        status = requests.get(f"{server.rest_url}/v1/models/{model}", timeout=10).json()
        assert [v["state"] for v in status["model_version_status"]] == ["AVAILABLE"]
        answer = requests.post(f"{server.rest_url}/v1/models/{model}:predict", timeout=30,
                               json={"instances": np.zeros((1, 28, 28, 1)).tolist()})
        assert answer.status_code == 200
        assert len(answer.json()["predictions"]) == 1
    assert server.returncode == 0
