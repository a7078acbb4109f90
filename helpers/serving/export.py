"""Write a Keras classifier into TF Serving's layout: ``<base>/<version>/`` SavedModel.

The serving signature ``serving_default`` takes ``image`` (float32, N×28×28×1, values in
[0, 1]) and returns ``probabilities`` (N×10) and ``class_id`` (int64, N). The model is saved as a
``tf.Module`` attribute with ``tf.saved_model.save``, which stores each weight once (notebook 03
measured Keras' ``ExportArchive`` storing them twice).
"""

from __future__ import annotations

from pathlib import Path

from helpers import data


def export_classifier(model, base_path: Path, version: int) -> Path:
    """Export ``model`` as version ``version`` under ``base_path``; returns the version folder.

    Written to a temporary sibling first and renamed, so a polling server never sees a
    half-written version; if saving fails, the temporary sibling is removed and the error raised.
    """
    import shutil

    import tensorflow as tf

    target = Path(base_path) / str(int(version))
    if target.exists():
        raise FileExistsError(f"{target} exists: versions are immutable, use a new number")
    module = tf.Module()
    module.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, *data.IMAGE_SHAPE], tf.float32, name="image")])
    def serve(image):
        probabilities = model(image, training=False)
        return {"probabilities": probabilities, "class_id": tf.argmax(probabilities, axis=1)}

    staging = Path(base_path) / f".staging-{int(version)}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(staging), signatures={"serving_default": serve})
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
