"""SavedModel versions on disk, loaded and hot-reloaded like TF Serving does.

Layout (TF Serving's): ``<model_base_path>/<version>/saved_model.pb`` with a numeric version
folder per model version. The latest version serves by default; any loaded version can be asked
for by number or by label. A poll thread notices new version folders (loads them, then switches)
and removed ones (unloads them: a rollback is ``rm -r <base>/<version>``). A request that already
holds a version keeps it until it finishes, so reloading never drops in-flight requests.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.serving.errors import InvalidArgument, NotFound

log = logging.getLogger("helpers.serving")
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class TensorSpec:
    """Name, NumPy dtype and shape (``None`` for unknown dimensions) of one signature tensor."""

    name: str
    dtype: np.dtype
    shape: tuple


@dataclass
class Signature:
    """One callable signature of a version: its inputs, outputs and the concrete function."""

    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    function: object = field(repr=False)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        tensors = {name: tf.constant(value, dtype=self.inputs[name].dtype)
                   for name, value in inputs.items()}
        return {name: value.numpy() for name, value in self.function(**tensors).items()}


def _spec(name: str, tensor_spec) -> TensorSpec:
    shape = tuple(tensor_spec.shape.as_list()) if tensor_spec.shape.rank is not None else ()
    return TensorSpec(name, np.dtype(tensor_spec.dtype.as_numpy_dtype), shape)


@dataclass
class ModelVersion:
    """A loaded SavedModel version with its signatures and its SignatureDefs (for metadata)."""

    version: int
    path: Path
    signatures: dict[str, Signature]
    signature_defs: object = field(repr=False)   # meta_graph_pb2 SignatureDef map

    def signature(self, name: str | None) -> Signature:
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def '
                                  f"(available: {', '.join(sorted(self.signatures))})")
        return self.signatures[name]


def load_version(path: Path, version: int) -> ModelVersion:
    """Load one SavedModel folder; raises with the folder's name if it cannot be loaded."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    module = tf.saved_model.load(str(path))
    signatures = {}
    for name, function in module.signatures.items():
        inputs = {key: _spec(key, spec) for key, spec in function.structured_input_signature[1].items()}
        outputs = {key: _spec(key, spec) for key, spec in function.structured_outputs.items()}
        signatures[name] = Signature(name, inputs, outputs, function)
    saved_model = saved_model_pb2.SavedModel.FromString((Path(path) / "saved_model.pb").read_bytes())
    signature_defs = {name: definition for name, definition
                      in saved_model.meta_graphs[0].signature_def.items() if name in signatures}
    loaded = ModelVersion(version, Path(path), signatures, signature_defs)
    loaded._module = module        # keeps the variables alive as long as the version is used
    return loaded


def version_folders(base_path: Path) -> dict[int, Path]:
    """The numeric subfolders of ``base_path`` that hold a ``saved_model.pb``."""
    base_path = Path(base_path)
    if not base_path.is_dir():
        return {}
    return {int(child.name): child for child in base_path.iterdir()
            if child.is_dir() and child.name.isdigit() and (child / "saved_model.pb").is_file()}


class ModelManager:
    """Serves the versions of one model found under ``base_path``; reloads on :meth:`refresh`."""

    def __init__(self, name: str, base_path: Path, labels: dict[str, int] | None = None):
        self.name, self.base_path = name, Path(base_path)
        self.labels = dict(labels or {})
        self._versions: dict[int, ModelVersion] = {}
        self._failed: dict[int, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def refresh(self) -> dict[str, list[int]]:
        """Load new version folders and unload removed ones; return what changed."""
        on_disk = version_folders(self.base_path)
        with self._lock:
            known = set(self._versions) | set(self._failed)
        added, removed = sorted(set(on_disk) - known), sorted(known - set(on_disk))
        loaded = {}
        for version in added:          # load outside the lock: requests keep being served
            try:
                loaded[version] = load_version(on_disk[version], version)
                log.info("loaded %s version %d", self.name, version)
            except Exception as error:  # noqa: BLE001 - a bad folder must not stop the server
                with self._lock:
                    self._failed[version] = f"{type(error).__name__}: {error}"
                log.error("cannot load %s version %d from %s: %s", self.name, version,
                          on_disk[version], error)
        with self._lock:
            self._versions.update(loaded)
            for version in removed:
                self._versions.pop(version, None)
                self._failed.pop(version, None)
                log.info("unloaded %s version %d", self.name, version)
        return {"loaded": sorted(loaded), "unloaded": removed}

    def start_polling(self, interval_s: float = 1.0) -> None:
        """Check the folder every ``interval_s`` seconds in a daemon thread (0 disables it)."""
        if interval_s <= 0 or self._poller:
            return

        def poll():
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - keep polling; the error is logged
                    log.exception("refreshing %s failed", self.name)

        self._poller = threading.Thread(target=poll, name="model-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller:
            self._poller.join(timeout=5)

    def check_name(self, name: str) -> None:
        if name != self.name:
            raise NotFound(f"Servable not found for request: Latest({name})")

    def get(self, name: str, version: int | str | None = None, label: str | None = None) -> ModelVersion:
        """The version asked for (by number or label), else the latest; ``NotFound`` otherwise."""
        self.check_name(name)
        if label is not None:
            if label not in self.labels:
                raise NotFound(f"Unrecognized servable version label: {label}")
            version = self.labels[label]
        with self._lock:
            if version is None:
                if not self._versions:
                    raise NotFound(f"Servable not found for request: Latest({name})")
                return self._versions[max(self._versions)]
            try:
                number = int(version)
            except (TypeError, ValueError):
                raise InvalidArgument(f"Version must be an integer, got {version!r}") from None
            if number not in self._versions:
                raise NotFound(f"Servable not found for request: Specific({name}, {number})")
            return self._versions[number]

    def status(self, name: str, version: int | str | None = None) -> list[dict]:
        """TF Serving's ``model_version_status`` list (versions as strings), newest first."""
        self.check_name(name)
        with self._lock:
            rows = [{"version": str(v), "state": "AVAILABLE",
                     "status": {"error_code": "OK", "error_message": ""}} for v in self._versions]
            rows += [{"version": str(v), "state": "END",
                      "status": {"error_code": "UNKNOWN", "error_message": message}}
                     for v, message in self._failed.items()]
        if version is not None:
            rows = [row for row in rows if row["version"] == str(version)]
            if not rows:
                raise NotFound(f"Could not find version {version} of model {name}")
        return sorted(rows, key=lambda row: -int(row["version"]))

    @property
    def versions(self) -> list[int]:
        with self._lock:
            return sorted(self._versions)
