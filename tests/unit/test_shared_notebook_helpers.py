"""Helpers that several notebooks share: a table of paired comparisons, .tflite scores and a
batch-1 invoke ready for interleaved timing, and the error a broken listing raises."""

import keras
import numpy as np
import pytest

from helpers import checks, litert, runtimes, stats


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    images = np.random.default_rng(0).random((30, 28, 28, 1), dtype=np.float32)
    path = litert.convert_to_file(model, "float32", tmp_path_factory.mktemp("t") / "m.tflite")
    return model, images, path


def test_table_has_one_row_per_comparison_with_its_interval():
    y = np.repeat(np.arange(10), 50)
    wrong = y.copy()
    wrong[:20] = 1
    better = stats.compare(y, wrong, y, "old", "new", samples=200, seed=0)
    same = stats.compare(y, y, y, "new", "copy", samples=200, seed=0)
    table = stats.table([better, same])
    assert list(table.index) == ["new − old", "copy − new"]
    assert table.loc["new − old", "B − A (pt)"] == 4.0
    assert table.loc["new − old", "accuracy A"] == 0.96 and table.loc["new − old", "accuracy B"] == 1.0
    assert table.loc["new − old", "verdict"] == "new better"
    assert (table.loc["new − old", "only A right"], table.loc["new − old", "only B right"]) == (0, 20)
    assert table.loc["copy − new", "95% CI (pt)"] == "[+0.00, +0.00]"
    assert table.loc["copy − new", "verdict"] == "within noise"


def test_tflite_scores_match_keras(tiny_tflite):
    model, images, path = tiny_tflite
    scores = runtimes.tflite_scores(path, images, batch_size=7)       # 30 = 4 batches + padding
    assert scores.shape == (30, 10)
    np.testing.assert_allclose(scores, model.predict(images, verbose=0), atol=1e-5)


def test_tflite_invoke_runs_the_model_on_the_given_image(tiny_tflite):
    model, images, path = tiny_tflite
    invoke = runtimes.tflite_invoke(path, images[3:4])
    invoke()
    interpreter = invoke.__self__
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(output, model.predict(images[3:4], verbose=0), atol=1e-5)


def test_error_of_reports_the_raised_error():
    assert checks.error_of(lambda: int("x")) == \
        "ValueError: invalid literal for int() with base 10: 'x'"
    assert checks.error_of(lambda: (_ for _ in ()).throw(RuntimeError("a\nb"))) == "RuntimeError: a"
    assert checks.error_of(lambda: 1) == "no error"
    assert checks.error_of(lambda: int("x"), r"base \d+") == "ValueError: base 10"
