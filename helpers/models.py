"""Model builders shared by the notebooks, and the course's baseline model.

Builders take the Keras module as their first argument (``keras`` for Keras 3, ``tf_keras`` for
Keras 2), so one architecture builds in both and weights copy across with
``dst.set_weights(src.get_weights())``.

The baseline is trained by notebook 01 and stored in ``artifacts/`` as plain weight arrays
(``.npz``, loaded with ``allow_pickle=False``) plus a JSON manifest holding their SHA-256 and the
accuracy they reached. Any notebook gets it with :func:`get_baseline`, which verifies the
artifact, and retrains it with the same recipe when the artifact is absent, so that every
notebook still runs on its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from helpers import data, env
from helpers.artifacts import sha256_file

BASELINE_NAME = "baseline_cnn"


@dataclass(frozen=True)
class TrainingRecipe:
    """How the baseline is trained (the same in notebook 01 and in the retraining fallback).

    ``schedule="cosine"`` decays the learning rate from ``learning_rate`` to zero along a cosine
    over all training steps; ``"constant"`` keeps it fixed.
    """

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 2e-3
    schedule: str = "cosine"
    seed: int = env.DEFAULT_SEED


BASELINE_RECIPE = TrainingRecipe()
SMOKE_RECIPE = TrainingRecipe(epochs=1)
SMOKE_TRAIN_LIMIT = 5_000


def build_baseline_cnn(keras, dropout: float = 0.25, name: str = BASELINE_NAME):
    """The course's baseline CNN (225,034 parameters): two conv/pool blocks and a dense head.

    Input: float32 images in [0, 1], shape 28×28×1. Output: class probabilities (softmax).
    """
    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=data.IMAGE_SHAPE, name="image"),
        layers.Conv2D(32, 3, activation="relu", name="conv1"),
        layers.MaxPooling2D(name="pool1"),
        layers.Conv2D(64, 3, activation="relu", name="conv2"),
        layers.MaxPooling2D(name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dropout(dropout, name="dropout1"),
        layers.Dense(128, activation="relu", name="dense1"),
        layers.Dropout(dropout, name="dropout2"),
        layers.Dense(data.NUM_CLASSES, activation="softmax", name="probs"),
    ], name=name)


def compile_classifier(model, keras, learning_rate=BASELINE_RECIPE.learning_rate):
    """Compile for integer labels and probability outputs: Adam, cross-entropy, accuracy.

    ``learning_rate`` is a number or a Keras learning-rate schedule.
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])
    return model


def copy_weights(source, target):
    """Copy weights between two models of the same architecture (e.g. Keras 3 → tf_keras)."""
    source_weights, target_weights = source.get_weights(), target.get_weights()
    if [w.shape for w in source_weights] != [w.shape for w in target_weights]:
        raise ValueError(f"Architectures differ: {source.name} and {target.name} have "
                         f"different weight shapes")
    target.set_weights(source_weights)
    return target


def artifact_paths(artifacts_dir: Path | None = None) -> tuple[Path, Path]:
    """The baseline's weight file and manifest, in ``<root>/artifacts`` by default."""
    folder = Path(artifacts_dir) if artifacts_dir else env.course_root() / "artifacts"
    return folder / f"{BASELINE_NAME}.weights.npz", folder / f"{BASELINE_NAME}.json"


def default_artifacts_dir(mode: str) -> Path:
    """Where a run of ``mode`` stores the baseline: ``artifacts/``, or ``artifacts/smoke/``."""
    folder = env.course_root() / "artifacts"
    return folder / "smoke" if env.check_mode(mode) == "smoke" else folder


def save_baseline(model, test_accuracy: float, recipe: TrainingRecipe, mode: str,
                  artifacts_dir: Path | None = None, validation_accuracy: float | None = None) -> Path:
    """Store the baseline's weights and manifest. Smoke runs never overwrite the full artifact.

    Call it only once the run's checks have passed: later notebooks load whatever is stored.
    """
    weights_path, manifest_path = artifact_paths(artifacts_dir or default_artifacts_dir(mode))
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"w{i:02d}": w for i, w in enumerate(model.get_weights())}
    np.savez(weights_path, **arrays)
    manifest = {"architecture": BASELINE_NAME, "mode": mode, "test_accuracy": float(test_accuracy),
                "validation_accuracy": None if validation_accuracy is None else float(validation_accuracy),
                "parameters": int(model.count_params()), "recipe": asdict(recipe),
                "sha256": sha256_file(weights_path), "weights_file": weights_path.name}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return weights_path


def load_baseline(keras, artifacts_dir: Path | None = None):
    """Build the baseline in ``keras`` and load the stored weights after checking their SHA-256.

    Raises ``FileNotFoundError`` when there is no artifact and ``ValueError`` naming the file when
    it does not match its manifest.
    """
    weights_path, manifest_path = artifact_paths(artifacts_dir)
    if not (weights_path.is_file() and manifest_path.is_file()):
        raise FileNotFoundError(f"No baseline artifact at {weights_path} (run notebook 01)")
    manifest = json.loads(manifest_path.read_text())
    digest = sha256_file(weights_path)
    if digest != manifest["sha256"]:
        raise ValueError(f"{weights_path} does not match its manifest {manifest_path.name} "
                         f"(SHA-256 {digest}, expected {manifest['sha256']}); re-run notebook 01")
    with np.load(weights_path, allow_pickle=False) as stored:
        weights = [stored[key] for key in sorted(stored.files)]
    model = build_baseline_cnn(keras)
    model.set_weights(weights)
    return model, manifest


def learning_rate_for(keras, recipe: TrainingRecipe, steps_per_epoch: int):
    """The recipe's learning rate: a number, or a cosine decay over all its training steps."""
    if recipe.schedule == "constant":
        return recipe.learning_rate
    if recipe.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(recipe.learning_rate,
                                                      decay_steps=recipe.epochs * steps_per_epoch)
    raise ValueError(f"Unknown schedule {recipe.schedule!r}: use 'cosine' or 'constant'")


def train_baseline(keras, train: data.Split, recipe: TrainingRecipe = BASELINE_RECIPE,
                   validation: data.Split | None = None, callbacks=None, verbose: int = 2):
    """Train the baseline with ``recipe`` (seeded by ``recipe.seed``); return ``(model, history)``.

    ``validation`` is evaluated after every epoch (for early stopping, pass it with
    ``callbacks=[keras.callbacks.EarlyStopping(...)]``).
    """
    keras.utils.set_random_seed(recipe.seed)        # Python, NumPy and TensorFlow
    steps_per_epoch = -(-len(train) // recipe.batch_size)
    model = compile_classifier(build_baseline_cnn(keras), keras,
                               learning_rate_for(keras, recipe, steps_per_epoch))
    history = model.fit(data.make_dataset(train, recipe.batch_size, shuffle=True, seed=recipe.seed),
                        validation_data=data.make_dataset(validation) if validation else None,
                        epochs=recipe.epochs, shuffle=False, callbacks=callbacks,
                        verbose=verbose)
    return model, history


def fine_tune(model, keras, train: data.Split, epochs: int, learning_rate: float,
              batch_size: int = BASELINE_RECIPE.batch_size, seed: int = env.DEFAULT_SEED,
              validation: data.Split | None = None, callbacks=None, verbose: int = 0):
    """Compile ``model`` as a classifier and train it further; return the Keras history.

    Used for every compression fine-tune (QAT, pruning, clustering): seeded the same way each
    time, so two variants differ only in the technique. ``model`` can be a TF-MOT wrapped model
    (pruning needs ``callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]``).
    """
    keras.utils.set_random_seed(seed)
    compile_classifier(model, keras, learning_rate)
    return model.fit(data.make_dataset(train, batch_size, shuffle=True, seed=seed),
                     validation_data=data.make_dataset(validation) if validation else None,
                     epochs=epochs, shuffle=False, callbacks=callbacks, verbose=verbose)


def get_baseline(keras, mode: str, artifacts_dir: Path | None = None, verbose: int = 2):
    """The trained baseline for any notebook: the verified artifact, else retrained.

    Returns ``(model, manifest)``. Looks in ``artifacts_dir`` if given, else in ``artifacts/``
    (and, in smoke mode, ``artifacts/smoke/``). When none exists, full mode retrains with
    :data:`BASELINE_RECIPE` on the 54,000 training images of :func:`data.course_splits`
    (minutes) and smoke mode trains one quick epoch on a subset of them; the result is saved
    and returned.
    """
    env.check_mode(mode)
    folders = [Path(artifacts_dir)] if artifacts_dir else [default_artifacts_dir("full")]
    if mode == "smoke" and not artifacts_dir:
        folders.append(default_artifacts_dir("smoke"))
    for folder in folders:
        try:
            return load_baseline(keras, folder)
        except FileNotFoundError:
            continue
    print(f"No baseline artifact in {', '.join(map(str, folders))}: training it now ({mode} mode).")
    splits = data.course_splits()
    recipe = BASELINE_RECIPE if mode == "full" else SMOKE_RECIPE
    limit = None if mode == "full" else SMOKE_TRAIN_LIMIT
    model, _ = train_baseline(keras, data.stratified_subset(splits.train, limit), recipe,
                              verbose=verbose)
    _, accuracy = model.evaluate(data.to_float(splits.test.x), splits.test.y, verbose=0)
    _, val_accuracy = model.evaluate(data.to_float(splits.validation.x), splits.validation.y,
                                     verbose=0)
    target = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir(mode)
    save_baseline(model, accuracy, recipe, mode, target, validation_accuracy=val_accuracy)
    return load_baseline(keras, target)
