"""TF Serving's configuration files, read with TF Serving's own protos and text format.

- ``--model_config_file``: a text-format ``ModelServerConfig`` (``model_server_config.proto``):
  a ``model_config_list`` of ``config { name base_path model_platform model_version_policy
  version_labels }``. :func:`read_model_server_config` parses it with
  ``tensorflow_serving.config.model_server_config_pb2`` (from ``tensorflow-serving-api``).
- The version policy (``file_system_storage_path_source.proto``, ``ServableVersionPolicy``):
  ``latest { num_versions: N }`` (the default, with N = 1), ``all {}``, ``specific { versions:
  ... }``; :func:`aspired_versions` applies one to the versions found on disk.
- ``--ssl_config_file`` (``ssl_config.proto``: ``server_key``, ``server_cert``, ``custom_ca``,
  ``client_verify``) and ``--monitoring_config_file`` (``monitoring_config.proto``:
  ``prometheus_config { enable path }``): their messages are not in the pip package, so
  :func:`read_ssl_config` and :func:`read_monitoring_config` declare the same fields.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

TENSORFLOW_PLATFORM = "tensorflow"
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def parse_model_server_config(text: str):
    """A ``ModelServerConfig`` from its text format; ``ValueError`` with TF Serving's wording."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ValueError(f"Error parsing text-format tensorflow.serving.ModelServerConfig: {error}") from None
    return validate_model_server_config(config)


def validate_model_server_config(config):
    """``config`` if this server can serve it (a ``model_config_list`` of uniquely named
    TensorFlow models with base paths), else ``ValueError``."""
    if config.WhichOneof("config") == "custom_model_config":
        raise ValueError("custom_model_config is not supported: use model_config_list")
    for model in config.model_config_list.config:
        if not model.name or not model.base_path:
            raise ValueError(f"Every model config needs a name and a base_path, got {model}")
        if model.model_platform not in ("", TENSORFLOW_PLATFORM):
            raise ValueError(f"Model {model.name} requests unsupported platform {model.model_platform}")
    names = [model.name for model in config.model_config_list.config]
    if len(names) != len(set(names)):
        raise ValueError(f"Model names must be unique, got {names}")
    return config


def read_model_server_config(path: Path):
    """Parse the file given to ``--model_config_file`` (see :func:`parse_model_server_config`)."""
    return parse_model_server_config(Path(path).read_text())


def single_model_config(name: str, base_path: Path):
    """The config ``--model_name`` and ``--model_base_path`` stand for (TF Serving's
    ``BuildSingleModelConfig``): one model, platform tensorflow, the default version policy."""
    return parse_model_server_config(
        f"model_config_list {{ config {{ name: {_quoted(name)} base_path: {_quoted(str(base_path))} "
        f"model_platform: {_quoted(TENSORFLOW_PLATFORM)} }} }}")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def model_config_text(models: list[dict]) -> str:
    """The text format of a ``ModelServerConfig`` for ``models``, each a dict with ``name``,
    ``base_path`` and optionally ``policy`` (``"latest"``, ``"latest:2"``, ``"all"`` or a list
    of versions for ``specific``) and ``labels`` (``{"stable": 2}``). What a deployment script
    writes to the file that ``--model_config_file`` names."""
    lines = ["model_config_list {"]
    for model in models:
        lines += ["  config {", f"    name: {_quoted(model['name'])}",
                  f"    base_path: {_quoted(str(model['base_path']))}",
                  f"    model_platform: {_quoted(TENSORFLOW_PLATFORM)}"]
        policy = model.get("policy", "latest")
        if isinstance(policy, (list, tuple)):
            versions = " ".join(f"versions: {int(v)}" for v in policy)
            lines.append(f"    model_version_policy {{ specific {{ {versions} }} }}")
        elif policy == "all":
            lines.append("    model_version_policy { all {} }")
        elif policy.startswith("latest:"):
            lines.append(f"    model_version_policy {{ latest {{ num_versions: {int(policy[7:])} }} }}")
        elif policy != "latest":
            raise ValueError(f"Unknown policy {policy!r}: latest, latest:N, all or a list of versions")
        for label, version in model.get("labels", {}).items():
            lines.append(f"    version_labels {{ key: {_quoted(label)} value: {int(version)} }}")
        lines.append("  }")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    parse_model_server_config(text)             # what we write must be what TF Serving reads
    return text


def aspired_versions(policy, on_disk: set[int]) -> set[int]:
    """The versions a ``ServableVersionPolicy`` serves among those ``on_disk``.

    ``latest`` (also when no policy is set): the ``num_versions`` highest (default 1); ``all``:
    every one; ``specific``: those listed that exist on disk.
    """
    choice = policy.WhichOneof("policy_choice") if policy is not None else None
    if choice == "all":
        return set(on_disk)
    if choice == "specific":
        return set(policy.specific.versions) & set(on_disk)
    count = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions else 1
    return set(sorted(on_disk)[-count:]) if on_disk else set()


def _message_class(name: str, fields: list[tuple[str, int]], nested: dict | None = None):
    """A protobuf message class ``tensorflow.serving.<name>`` with string/bool/message fields."""
    proto = descriptor_pb2.FileDescriptorProto(name=f"helpers_serving_{name.lower()}.proto",
                                               package="tensorflow.serving", syntax="proto3")
    for message_name, message_fields in {name: fields, **(nested or {})}.items():
        message = proto.message_type.add(name=message_name)
        for number, (field_name, field_type) in enumerate(message_fields, start=1):
            field = message.field.add(name=field_name, number=number, type=field_type,
                                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
            if field_type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE:
                field.type_name = f".tensorflow.serving.{field_name.title().replace('_', '')}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))


_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_BOOL = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE


def read_ssl_config(path: Path):
    """The ``SSLConfig`` in ``path`` (text format): ``server_key``, ``server_cert`` (PEM text),
    ``custom_ca`` (PEM of the CA that signs client certificates), ``client_verify`` (bool)."""
    cls = _message_class("SSLConfig", [("server_key", _STRING), ("server_cert", _STRING),
                                       ("custom_ca", _STRING), ("client_verify", _BOOL)])
    config = text_format.Parse(Path(path).read_text(), cls())
    if not (config.server_key and config.server_cert):
        raise ValueError(f"{path}: an SSLConfig needs server_key and server_cert")
    if config.client_verify and not config.custom_ca:
        raise ValueError(f"{path}: client_verify needs custom_ca (the CA of the client certificates)")
    return config


def read_monitoring_config(path: Path):
    """The ``MonitoringConfig`` in ``path``: ``prometheus_config { enable: true path: "..." }``."""
    cls = _message_class("MonitoringConfig", [("prometheus_config", _MESSAGE)],
                         {"PrometheusConfig": [("enable", _BOOL), ("path", _STRING)]})
    return text_format.Parse(Path(path).read_text(), cls())
