"""Checking deployment files offline: Kubernetes manifests, kustomize overlays, Dockerfiles.

No cluster and no Docker engine are needed: manifests are validated against the Kubernetes JSON
schemas that ``kubernetes-validate`` bundles (strict mode: unknown fields such as
``averageUtilisation`` are errors, not silently dropped), overlays are rendered with
``kubectl kustomize`` (offline), Dockerfiles are linted with ``hadolint`` and read with
``dockerfile-parse``, and the command an image runs can be turned into a local command line.

    problems = deploycheck.validate_text(deploycheck.render_overlay("deploy/k8s/overlays/staging"))
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "1.37.0"     # the newest schemas kubernetes-validate 1.37.0 bundles


@dataclass
class Checked:
    """One Kubernetes document and the schema's verdict (``error`` is ``""`` when valid)."""

    source: str
    kind: str
    name: str
    error: str

    @property
    def valid(self) -> bool:
        """True when the schema found nothing wrong."""
        return not self.error


def _documents(text: str) -> list[dict]:
    import yaml

    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate_document(doc: dict, version: str = KUBERNETES_VERSION, strict: bool = True) -> str:
    """The schema's error message for one manifest (a dict), or ``""`` when it is valid."""
    import kubernetes_validate

    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return "not a Kubernetes object: apiVersion and kind are required"
    try:
        kubernetes_validate.validate(doc, version, strict=strict)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(p) for p in error.path)
        return f"{where}: {error.message}" if where else error.message
    except kubernetes_validate.SchemaNotFoundError as error:
        return str(error)
    return ""


def validate_text(text: str, source: str = "<text>", version: str = KUBERNETES_VERSION,
                  strict: bool = True) -> list[Checked]:
    """Validate every document of a YAML stream (a file, or a rendered overlay)."""
    checked = []
    for doc in _documents(text):
        meta = doc.get("metadata") or {} if isinstance(doc, dict) else {}
        checked.append(Checked(source, str(doc.get("kind", "?")) if isinstance(doc, dict) else "?",
                               str(meta.get("name", "?")), validate_document(doc, version, strict)))
    return checked


def validate_tree(root: Path, version: str = KUBERNETES_VERSION) -> list[Checked]:
    """Validate (strictly) every manifest under ``root`` (``kustomization.yaml`` files excepted:
    kustomize's own configuration, not a Kubernetes object) and every overlay rendered from
    ``root/overlays/*``."""
    root = Path(root)
    checked = []
    for path in sorted(root.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            checked += validate_text(path.read_text(), str(path.relative_to(root)), version)
    for overlay in sorted(p for p in (root / "overlays").glob("*") if p.is_dir()):
        checked += validate_text(render_overlay(overlay), f"kustomize {overlay.relative_to(root)}", version)
    return checked


def render_overlay(path: Path, timeout_s: float = 60) -> str:
    """``kubectl kustomize <path>``: the manifests an overlay produces (no cluster contacted)."""
    kubectl = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True,
                          timeout=timeout_s)
    if done.returncode:
        raise RuntimeError(f"kubectl kustomize {path} failed: {done.stderr.strip()}")
    return done.stdout


def hadolint(dockerfile: Path, timeout_s: float = 60) -> list[str]:
    """hadolint's findings for a Dockerfile, one line each (empty: clean)."""
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run([binary, "--no-color", str(dockerfile)], capture_output=True, text=True,
                          timeout=timeout_s)
    findings = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode and not findings:
        raise RuntimeError(f"hadolint failed on {dockerfile}: {done.stderr.strip()}")
    return findings


@dataclass
class ImageFacts:
    """What a Dockerfile says about the image it builds (final stage)."""

    base_image: str
    user: str
    copies: list[tuple[str, str]]      # (source, destination) of COPY/ADD
    command: list[str]                 # ENTRYPOINT + CMD, exec form

    @property
    def pinned(self) -> bool:
        """The base image names a tag (or digest) other than ``latest``."""
        name = self.base_image.split("@")[0]
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
        return "@sha256:" in self.base_image or (tag not in ("", "latest") and "$" not in tag)

    @property
    def runs_as_root(self) -> bool:
        """No USER, or USER root / uid 0: the container's process would run as root."""
        return self.user.split(":")[0] in ("", "0", "root")


def _exec_form(value: str, instruction: str) -> list[str]:
    try:
        words = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f"{instruction} must use the exec form (a JSON array), got {value!r}") from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{instruction} must be a JSON array of strings, got {value!r}")
    return words


def image_facts(dockerfile: Path) -> ImageFacts:
    """Base image, final USER, COPY/ADD pairs (ARG defaults substituted) and the command
    (ENTRYPOINT followed by CMD) of a Dockerfile, read with dockerfile-parse."""
    from dockerfile_parse import DockerfileParser

    with open(dockerfile, "rb") as handle:
        parser = DockerfileParser(fileobj=handle)
        structure, base_image = parser.structure, parser.baseimage or ""
    user, copies, entrypoint, cmd, args = "", [], [], [], {}
    for item in structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            user, copies, entrypoint, cmd = "", [], [], []
        elif instruction == "ARG" and "=" in value:
            key, default = value.split("=", 1)
            args[key.strip()] = default.strip()
        elif instruction == "USER":
            user = value.strip()
        elif instruction in ("COPY", "ADD"):
            words = [w for w in value.split() if not w.startswith("--")]
            words = [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), w) for w in words]
            copies += [(source, words[-1]) for source in words[:-1]]
        elif instruction == "ENTRYPOINT":
            entrypoint, cmd = _exec_form(value, "ENTRYPOINT"), []
        elif instruction == "CMD":
            cmd = _exec_form(value, "CMD")
    return ImageFacts(base_image, user, copies, entrypoint + cmd)


def flag_values(command: list[str]) -> dict[str, str]:
    """``--name=value`` flags of a command line as a dict (``--flag`` alone maps to ``"true"``)."""
    flags = {}
    for word in command:
        if word.startswith("--"):
            name, _, value = word[2:].partition("=")
            flags[name] = value if "=" in word else "true"
    return flags


def accepted_flags(command=(sys.executable, "-m", "helpers.serving")) -> set[str]:
    """The flags a server accepts, read from its own ``--help``."""
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} --help failed: {done.stderr.strip()}")
    return set(re.findall(r"--(\w+)", done.stdout)) - {"help"}


# Files the images copy (container path in the flag -> the file in this repository).
IMAGE_FILES = {"batching_parameters_file":
               Path(__file__).resolve().parents[1] / "deploy" / "batching_parameters.txt"}


def localize(flags: list[str], model_base_path: Path, accepted: set[str],
             files: dict[str, Path] | None = None) -> tuple[list[str], dict[str, str]]:
    """An image's server flags made runnable on this machine: ``--model_base_path`` pointed at a
    local copy, each flag named in ``files`` (e.g. ``batching_parameters_file``) pointed at the
    local file the image copies, the ports and ``--host`` left to the launcher (free ports on
    127.0.0.1), and the flags the local server does not accept dropped. Returns
    ``(flags, dropped)`` where ``dropped`` maps each removed flag to the reason."""
    files = files or {}
    kept, dropped = [], {}
    for word in flags:
        name = word[2:].partition("=")[0] if word.startswith("--") else ""
        if not name:
            raise ValueError(f"expected --flag=value words, got {word!r}")
        if name in ("port", "rest_api_port", "host"):
            dropped[name] = "set by the launcher: free ports on 127.0.0.1"
        elif name == "model_base_path":
            kept.append(f"--model_base_path={model_base_path}")
        elif name in files and name in accepted:
            kept.append(f"--{name}={files[name]}")
        elif name not in accepted:
            dropped[name] = "not accepted by the local server"
        else:
            kept.append(word)
    return kept, dropped
