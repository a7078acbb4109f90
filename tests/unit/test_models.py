import json

import keras
import numpy as np
import pytest

from helpers import data, models


def test_baseline_architecture():
    model = models.build_baseline_cnn(keras)
    assert model.count_params() == 225_034
    assert model.output_shape == (None, data.NUM_CLASSES)


def test_weights_copy_to_tf_keras():
    import tf_keras

    source = models.build_baseline_cnn(keras)
    target = models.copy_weights(source, models.build_baseline_cnn(tf_keras))
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(source.predict(x, verbose=0), target.predict(x, verbose=0),
                               atol=1e-6)


def test_copy_weights_refuses_other_architecture():
    other = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="Architectures differ"):
        models.copy_weights(models.build_baseline_cnn(keras), other)


def test_save_load_roundtrip_and_tamper(tmp_path):
    model = models.build_baseline_cnn(keras)
    path = models.save_baseline(model, 0.5, models.SMOKE_RECIPE, "smoke", tmp_path)
    loaded, manifest = models.load_baseline(keras, tmp_path)
    assert manifest["test_accuracy"] == 0.5 and manifest["mode"] == "smoke"
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    manifest_path = tmp_path / "baseline_cnn.json"
    changed = json.loads(manifest_path.read_text()) | {"sha256": "0" * 64}
    manifest_path.write_text(json.dumps(changed))
    with pytest.raises(ValueError, match="does not match its manifest"):
        models.load_baseline(keras, tmp_path)
    assert path.name == "baseline_cnn.weights.npz"


def test_load_missing_artifact(tmp_path):
    with pytest.raises(FileNotFoundError, match="run notebook 01"):
        models.load_baseline(keras, tmp_path)


def test_get_baseline_trains_when_missing_in_smoke_mode(tmp_path):
    model, manifest = models.get_baseline(keras, "smoke", artifacts_dir=tmp_path, verbose=0)
    assert manifest["mode"] == "smoke" and manifest["test_accuracy"] > 0.5
    assert (tmp_path / "baseline_cnn.weights.npz").is_file()
    with pytest.raises(ValueError, match="Unknown mode"):
        models.get_baseline(keras, "tiny", artifacts_dir=tmp_path)


def test_recipe_schedules():
    recipe = models.BASELINE_RECIPE
    schedule = models.learning_rate_for(keras, recipe, steps_per_epoch=10)
    assert float(schedule(0)) == pytest.approx(recipe.learning_rate)
    assert float(schedule(recipe.epochs * 5)) == pytest.approx(recipe.learning_rate / 2, rel=1e-3)
    assert float(schedule(recipe.epochs * 10)) == pytest.approx(0.0, abs=1e-9)   # decays to zero
    constant = models.TrainingRecipe(learning_rate=0.01, schedule="constant")
    assert models.learning_rate_for(keras, constant, 10) == 0.01
    with pytest.raises(ValueError, match="Unknown schedule"):
        models.learning_rate_for(keras, models.TrainingRecipe(schedule="step"), 10)


def test_manifest_records_validation_accuracy(tmp_path):
    models.save_baseline(models.build_baseline_cnn(keras), 0.9, models.SMOKE_RECIPE, "smoke",
                         tmp_path, validation_accuracy=0.91)
    _, manifest = models.load_baseline(keras, tmp_path)
    assert manifest["validation_accuracy"] == 0.91 and manifest["recipe"]["schedule"] == "cosine"
