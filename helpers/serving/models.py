"""The models a server serves, their versions on disk, and how they are loaded: TF Serving's way.

Layout (TF Serving's): ``<base_path>/<version>/saved_model.pb``, one numeric folder per version.
What is loaded follows each model's version policy (``config.aspired_versions``): by default
only the **latest** version (``latest { num_versions: 1 }``); a ``--model_config_file`` can ask
for ``latest { num_versions: N }``, ``all {}`` or ``specific { versions: ... }``, and map labels
(``stable``, ``canary``) to versions. A poll thread re-reads the folders (and the config file,
with ``--model_config_file_poll_wait_seconds``): an aspired version is loaded (and warmed up
with the records in ``assets.extra/tf_serving_warmup_requests``) *before* a version that is no
longer aspired is unloaded, so there is always a version to answer, and a request that holds a
version keeps it until it finishes (TF Serving's ``AvailabilityPreservingPolicy``).

The status of a model lists every version the server has seen, with its state (``AVAILABLE``,
``END`` once unloaded or when its load failed, with the error), newest first, as TF Serving's
``ServableStateMonitor`` does. Version labels may only point to versions that are
``AVAILABLE`` when the config is applied (``ServerCore::UpdateModelVersionLabelMap``), unless
``allow_labels_for_unavailable`` (``--allow_version_labels_for_unavailable_models``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.serving.errors import FailedPrecondition, InvalidArgument, NotFound

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
    """A loaded SavedModel version: its signatures and every SignatureDef (for metadata)."""

    name: str
    version: int
    path: Path
    signatures: dict[str, Signature]
    signature_defs: object = field(repr=False)   # name -> meta_graph_pb2.SignatureDef

    def signature(self, name: str | None) -> Signature:
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def')
        return self.signatures[name]


def load_version(path: Path, version: int, name: str = "") -> ModelVersion:
    """Load one SavedModel folder; raises if it cannot be loaded."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    module = tf.saved_model.load(str(path))
    signatures = {}
    for key, function in module.signatures.items():
        inputs = {k: _spec(k, spec) for k, spec in function.structured_input_signature[1].items()}
        outputs = {k: _spec(k, spec) for k, spec in function.structured_outputs.items()}
        signatures[key] = Signature(key, inputs, outputs, function)
    saved_model = saved_model_pb2.SavedModel.FromString((Path(path) / "saved_model.pb").read_bytes())
    loaded = ModelVersion(name, version, Path(path), signatures,
                          dict(saved_model.meta_graphs[0].signature_def.items()))
    loaded._module = module        # keeps the variables alive as long as the version is used
    return loaded


def version_folders(base_path: Path) -> dict[int, Path]:
    """The numeric subfolders of ``base_path`` that hold a ``saved_model.pb``."""
    base_path = Path(base_path)
    if not base_path.is_dir():
        return {}
    return {int(child.name): child for child in base_path.iterdir()
            if child.is_dir() and child.name.isdigit() and (child / "saved_model.pb").is_file()}


@dataclass
class VersionState:
    """One row of a model's status: TF Serving's ``ModelVersionStatus`` state and error."""

    state: str
    error_code: str = "OK"
    error_message: str = ""


class ServedModel:
    """One model: its base path, version policy and labels, the versions loaded and their states."""

    def __init__(self, model_config, warmup_iterations: int = 1):
        self.warmup_iterations = warmup_iterations
        self.configured = True
        self.loaded: dict[int, ModelVersion] = {}
        self.states: dict[int, VersionState] = {}
        self.failed: set[int] = set()
        self.configure(model_config)

    def configure(self, model_config) -> None:
        self.name, self.base_path = model_config.name, Path(model_config.base_path)
        self.policy = model_config.model_version_policy
        self.labels = dict(model_config.version_labels)
        self.configured = True

    def retire(self) -> None:
        """Removed from the config: every version is unloaded at the next refresh."""
        self.configured, self.labels = False, {}

    def aspired(self, on_disk: dict[int, Path]) -> set[int]:
        from helpers.serving.config import aspired_versions

        return aspired_versions(self.policy, set(on_disk)) if self.configured else set()


class ModelManager:
    """The models of a ``ModelServerConfig``: loads and unloads versions, answers lookups and
    status. :meth:`apply_config` changes the config (at start-up and on every reload)."""

    def __init__(self, warmup_iterations: int = 1, allow_labels_for_unavailable: bool = False):
        self.warmup_iterations = warmup_iterations
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self._models: dict[str, ServedModel] = {}
        self._lock = threading.Lock()           # guards the maps that requests read
        self._refreshing = threading.Lock()     # one refresh (load/unload pass) at a time
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.config = None

    # ---- configuration -------------------------------------------------------------------
    def apply_config(self, config) -> None:
        """Serve exactly the models of ``config`` (a ``ModelServerConfig``), then load/unload.

        Refused with ``FailedPrecondition`` (nothing changes) when a label points to a version
        that is not ``AVAILABLE`` now, as TF Serving refuses it (unless allowed).
        """
        wanted = {model.name: model for model in config.model_config_list.config}
        with self._lock:
            for name, model in wanted.items():
                current = self._models.get(name)
                for label, version in model.version_labels.items():
                    state = current.states.get(version) if current else None
                    moved = current is not None and current.labels.get(label, version) != version
                    allowed = self.allow_labels_for_unavailable and not moved   # a new label only
                    if not allowed and (state is None or state.state != "AVAILABLE"):
                        raise FailedPrecondition(
                            f"Request to assign label to version {version} of model {name}, which is "
                            f"not currently available for inference")
            for name, model in wanted.items():
                if name in self._models:
                    self._models[name].configure(model)
                else:
                    self._models[name] = ServedModel(model, self.warmup_iterations)
            for name in set(self._models) - set(wanted):
                self._models[name].retire()
            self.config = config
        self.refresh()

    # ---- loading ---------------------------------------------------------------------------
    def refresh(self) -> dict[str, dict[str, list[int]]]:
        """Load the aspired versions that are not loaded, then unload those no longer aspired."""
        with self._refreshing:
            with self._lock:
                models = list(self._models.values())
            return {model.name: self._refresh_model(model) for model in models}

    def _refresh_model(self, model: ServedModel) -> dict[str, list[int]]:
        on_disk = version_folders(model.base_path)
        aspired = model.aspired(on_disk)
        with self._lock:
            model.failed &= set(on_disk)       # a failed version is retried once its folder is replaced
            to_load = sorted(aspired - set(model.loaded) - model.failed)
        loaded = []
        for version in to_load:                       # outside the lock: requests keep being served
            with self._lock:
                model.states[version] = VersionState("LOADING")
            try:
                new = load_version(on_disk[version], version, model.name)
                if model.warmup_iterations:
                    from helpers.serving import warmup

                    warmup.run(new, model.warmup_iterations)
            except Exception as error:  # noqa: BLE001 - a bad version must not stop the server
                with self._lock:
                    model.states[version] = VersionState("END", "UNKNOWN", f"{type(error).__name__}: {error}")
                    model.failed.add(version)
                log.error("cannot load %s version %d from %s: %s", model.name, version,
                          on_disk[version], error)
                continue
            with self._lock:
                model.loaded[version] = new
                model.states[version] = VersionState("AVAILABLE")
            loaded.append(version)
            log.info("loaded %s version %d", model.name, version)
        with self._lock:
            # AvailabilityPreservingPolicy: while aspired versions exist but none is ready (their
            # load failed), the highest version that is no longer aspired keeps serving.
            unaspired = sorted(set(model.loaded) - aspired)
            if aspired and not aspired & set(model.loaded):
                unaspired = unaspired[:-1]
            for version in unaspired:
                del model.loaded[version]
                model.states[version] = VersionState("END")
        for version in unaspired:
            log.info("unloaded %s version %d", model.name, version)
        return {"loaded": loaded, "unloaded": unaspired}

    def start_polling(self, interval_s: float = 1.0, config_path: Path | None = None,
                      config_interval_s: float = 0) -> None:
        """Check the version folders every ``interval_s`` seconds (0: never) and, with
        ``config_path``, re-read the config file every ``config_interval_s`` seconds (0: never)."""
        from helpers.serving.config import read_model_server_config

        def every(seconds, action, what):
            while not self._stop.wait(seconds):
                try:
                    action()
                except Exception as error:  # noqa: BLE001 - keep polling; the error is logged
                    log.error("%s failed: %s", what, error)

        def reload_config():
            config = read_model_server_config(config_path)
            if config != self.config:
                self.apply_config(config)
                log.info("applied the model config in %s", config_path)

        jobs = [(interval_s, self.refresh, "refreshing the models")]
        if config_path and config_interval_s > 0:
            jobs.append((config_interval_s, reload_config, f"reloading {config_path}"))
        for seconds, action, what in jobs:
            if seconds > 0:
                thread = threading.Thread(target=every, args=(seconds, action, what), daemon=True,
                                          name=f"poll-{len(self._threads)}")
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    # ---- requests --------------------------------------------------------------------------
    def _model(self, name: str) -> ServedModel | None:
        model = self._models.get(name)
        return model if model is not None and model.configured else None

    def get(self, name: str, version: int | str | None = None, label: str | None = None) -> ModelVersion:
        """The version asked for (by number or label), else the latest loaded; TF Serving's
        errors otherwise (``NotFound`` for a model or version not loaded, ``InvalidArgument``
        for an unknown label)."""
        with self._lock:
            model = self._model(name)
            if label is not None:
                if model is None or label not in model.labels:
                    raise InvalidArgument(f"Unrecognized servable version label: {label}")
                version = model.labels[label]
            if version is None:
                if model is None or not model.loaded:
                    raise NotFound(f"Servable not found for request: Latest({name})")
                return model.loaded[max(model.loaded)]
            number = int(version)
            if model is None or number not in model.loaded:
                raise NotFound(f"Servable not found for request: Specific({name}, {number})")
            return model.loaded[number]

    def status(self, name: str, version: int | str | None = None) -> list[dict]:
        """TF Serving's ``model_version_status`` rows (versions as strings), newest first."""
        with self._lock:
            model = self._models.get(name)
            states = dict(model.states) if model else {}
        if version is not None:
            if int(version) not in states:
                raise NotFound(f"Could not find version {version} of model {name}")
            states = {int(version): states[int(version)]}
        if not states:
            raise NotFound(f"Could not find any versions of model {name}")
        return [{"version": str(v), "state": s.state,
                 "status": {"error_code": s.error_code, "error_message": s.error_message}}
                for v, s in sorted(states.items(), reverse=True)]

    def versions(self, name: str) -> list[int]:
        """The loaded versions of model ``name``, ascending."""
        with self._lock:
            model = self._model(name)
            return sorted(model.loaded) if model else []

    @property
    def names(self) -> list[str]:
        """The models of the current config."""
        with self._lock:
            return sorted(name for name, model in self._models.items() if model.configured)
