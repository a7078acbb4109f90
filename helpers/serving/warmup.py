"""SavedModel warm-up, as TF Serving does it (``saved_model_warmup.md``, ``--enable_model_warmup``).

The first requests to a freshly loaded model are slow: TensorFlow optimises the graph and builds
its kernels on the first call, and again for each new batch shape. TF Serving therefore replays
sample requests when it loads a version, before the version serves: a TFRecord file
``<version>/assets.extra/tf_serving_warmup_requests`` of ``PredictionLog`` protos (at most 1,000
records, each replayed ``--num_request_iterations_for_warmup`` times, default 1). A version
without the file loads without warm-up; a file that cannot be read or a record that fails makes
the load fail (the version is not served). This server replays ``predict_log`` records;
``classify_log``, ``regress_log`` and ``multi_inference_log`` need the APIs it does not have.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("helpers.serving")
REQUESTS_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000


def requests_path(version_dir: Path) -> Path:
    """Where TF Serving looks for the warm-up records of a version folder."""
    return Path(version_dir) / "assets.extra" / REQUESTS_FILE


def predict_log(inputs: dict[str, np.ndarray], signature_name: str = "serving_default"):
    """A ``PredictionLog`` whose ``predict_log.request`` sends ``inputs`` to ``signature_name``."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    record = prediction_log_pb2.PredictionLog()
    request = record.predict_log.request
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return record


def write_requests(version_dir: Path, records) -> Path:
    """Write ``PredictionLog`` records as the version's warm-up file (a TFRecord); its path."""
    import tensorflow as tf

    records = list(records)
    if len(records) > MAX_RECORDS:
        raise ValueError(f"TF Serving replays at most {MAX_RECORDS} warm-up records, got {len(records)}")
    path = requests_path(version_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record.SerializeToString())
    return path


def run(loaded, iterations: int = 1) -> int:
    """Replay the warm-up records of ``loaded`` (a :class:`~helpers.serving.models.ModelVersion`);
    return how many were read (0 without a file). Raises what makes TF Serving's load fail."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from helpers.serving import codec

    path = requests_path(loaded.path)
    if not path.is_file():
        log.info("No warmup data file found at %s", path)
        return 0
    started, count = time.perf_counter(), 0
    try:
        for serialized in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            count += 1
            if count > MAX_RECORDS:
                raise ValueError(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
            record = prediction_log_pb2.PredictionLog.FromString(serialized)
            kind = record.WhichOneof("log_type")
            if kind != "predict_log":
                raise ValueError(f"Unsupported log_type for warmup: {kind} (this server replays "
                                 f"predict_log records only)")
            request = record.predict_log.request
            signature = loaded.signature(request.model_spec.signature_name)
            inputs = codec.inputs_from_protos(request.inputs, signature)
            for _ in range(iterations):
                signature.run(inputs)
    except tf.errors.DataLossError as error:
        raise ValueError(f"{error.message}. Please verify your warmup data is in TFRecord format.") from None
    elapsed_us = int((time.perf_counter() - started) * 1e6)
    log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d. "
             "Elapsed time (microseconds): %d.", path, count, elapsed_us)
    return count
