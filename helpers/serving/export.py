"""Write a Keras classifier into TF Serving's layout: ``<base>/<version>/`` SavedModel.

The serving signature ``serving_default`` takes ``image`` (float32, N×28×28×1, values in
[0, 1]) and returns ``probabilities`` (N×10) and ``class_id`` (int64, N). With
``payload_signatures``, two more take the same images in smaller encodings: ``from_uint8``
(``image``: uint8 pixels 0-255, N×28×28×1) and ``from_bytes`` (``image_bytes``: one string of
784 raw pixel bytes per image, sent as ``{"b64": ...}`` in JSON). With ``warmup_images`` the
version carries TF Serving's warm-up records (``assets.extra/tf_serving_warmup_requests``, one
``serving_default`` request per size in ``warmup_batch_sizes``). The model is saved as a
``tf.Module`` attribute with ``tf.saved_model.save``, which stores each weight once (notebook 03
measured Keras' ``ExportArchive`` storing them twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from helpers import data


def export_classifier(model, base_path: Path, version: int, payload_signatures: bool = False,
                      warmup_images: np.ndarray | None = None,
                      warmup_batch_sizes: Sequence[int] = (1,)) -> Path:
    """Export ``model`` as version ``version`` under ``base_path``; returns the version folder.

    Written to a temporary sibling first (warm-up records included) and renamed, so a polling
    server never sees a half-written version; if saving fails, the temporary sibling is removed
    and the error raised.
    """
    import shutil

    import tensorflow as tf

    from helpers.serving import warmup

    target = Path(base_path) / str(int(version))
    if target.exists():
        raise FileExistsError(f"{target} exists: versions are immutable, use a new number")
    module = tf.Module()
    module.model = model

    def classify(image):
        probabilities = model(image, training=False)
        return {"probabilities": probabilities, "class_id": tf.argmax(probabilities, axis=1)}

    signatures = {"serving_default": tf.function(classify, input_signature=[
        tf.TensorSpec([None, *data.IMAGE_SHAPE], tf.float32, name="image")])}
    if payload_signatures:
        @tf.function(input_signature=[tf.TensorSpec([None, *data.IMAGE_SHAPE], tf.uint8, name="image")])
        def from_uint8(image):
            return classify(tf.cast(image, tf.float32) / 255.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def from_bytes(image_bytes):
            pixels = tf.io.decode_raw(image_bytes, tf.uint8)
            return classify(tf.cast(tf.reshape(pixels, [-1, *data.IMAGE_SHAPE]), tf.float32) / 255.0)

        signatures.update(from_uint8=from_uint8, from_bytes=from_bytes)
    staging = Path(base_path) / f".staging-{int(version)}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(staging), signatures=signatures)
        if warmup_images is not None:
            images = np.asarray(warmup_images, np.float32)
            warmup.write_requests(staging, [
                warmup.predict_log({"image": np.resize(images, (size, *images.shape[1:]))})
                for size in warmup_batch_sizes])
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
