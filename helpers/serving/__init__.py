"""A model server in Python that speaks TensorFlow Serving's own APIs (notebook 11).

The real ``tensorflow_model_server`` is a C++ binary that cannot be installed here (no Docker,
not on PyPI or Debian). This package serves SavedModels from the same directory layout with the
same flags, the same REST API (``api_rest.md`` of tensorflow/serving) and the same gRPC services
(``tensorflow-serving-api``'s protos), so client code written against it runs unchanged against
the real server. Start it like the real one::

    python -m helpers.serving --model_name=baseline --model_base_path=/path/to/models \\
        --rest_api_port=8501 --port=8500 [--enable_batching] [--enable_monitoring]

Modules: :mod:`.models` (versions on disk, hot reload), :mod:`.codec` (JSON and tensors, errors),
:mod:`.batching` (dynamic batching), :mod:`.rest` (FastAPI app), :mod:`.grpc_service`,
:mod:`.server` (flags, start-up, shutdown), :mod:`.launcher` (start and stop it from Python),
:mod:`.export` (write a model into the layout).
"""
