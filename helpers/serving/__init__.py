"""A model server in Python that speaks TensorFlow Serving's own APIs (notebooks 11 and 11b).

The real ``tensorflow_model_server`` is a C++ binary that cannot be installed everywhere (no
Docker, not on PyPI). This package serves SavedModels from the same directory layout with the
same flags, the same version policies and config files, the same REST API (``api_rest.md`` of
tensorflow/serving) and the same gRPC services (``tensorflow-serving-api``'s protos), so client
code written against it runs unchanged against the real server; the contract tests
(``tests/unit/test_serving_contract.py``) check it against TF Serving's documented and tested
behaviour, and notebook 11 lists where it deliberately differs. Start it like the real one::

    python -m helpers.serving --model_name=baseline --model_base_path=/path/to/models \\
        --rest_api_port=8501 --port=8500 [--enable_batching] [--enable_monitoring]
    python -m helpers.serving --model_config_file=models.config --model_config_file_poll_wait_seconds=60

Modules: :mod:`.config` (TF Serving's config files, version policies), :mod:`.models` (versions
on disk, loading, labels), :mod:`.warmup` (warm-up records), :mod:`.codec` (JSON and tensors,
errors), :mod:`.batching` (dynamic batching), :mod:`.rest` (FastAPI app), :mod:`.grpc_service`,
:mod:`.tls` (certificates, ``--ssl_config_file``), :mod:`.server` (flags, start-up, shutdown),
:mod:`.launcher` (start and stop it from Python), :mod:`.export` (write a model into the
layout), :mod:`.metrics` (Prometheus), :mod:`.charts` (load-test plots).
"""
