"""Shared plumbing for the course notebooks.

One module per concern, imported explicitly (``from helpers import data``):

- ``env``: set-up of a notebook (Keras flavour, seeds, quiet logs, environment report), modes, paths;
- ``data``: Fashion-MNIST loading with checksum verification, subsets, splits, ``tf.data`` pipelines;
- ``models``: model builders for Keras 3 and tf_keras, and the course's baseline model;
- ``bench``: latency (median / p95 after warm-up) and size (bytes on disk, gzip'ed) measurement;
- ``runtimes``: one way to run a Keras model, a SavedModel, a ``.tflite`` or an ONNX file, and score it;
- ``litert``: conversion to ``.tflite`` in every post-training quantization mode;
- ``artifacts``: SHA-256 manifests of exported files, verified before loading;
- ``checks``: outcome assertions with per-mode thresholds;
- ``results``: recording a notebook's metrics to ``results/``;
- ``plots``: consistent figures;
- ``course``: the chapter plan;
- ``nbtools``: notebook code hashing, shared by the results writer, the runner and the lint.

Importing this package does no work: no TensorFlow import, no file written, no network.
"""

__version__ = "0.1.0"
