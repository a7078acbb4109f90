"""helpers.llmdecode: the KV cache's size and a decode step that matches a full forward pass."""

import numpy as np
import pytest

from helpers import llmdecode, llmmemory

TINY = {"vocabulary_size": 50, "num_layers": 2, "num_heads": 2, "hidden_dim": 16,
        "intermediate_dim": 32, "max_sequence_length": 32}


@pytest.fixture(scope="module")
def tiny_lm():
    return llmdecode.build_decoder(seed=0, **TINY)


def test_shapes_and_cache_match_the_formula(tiny_lm):
    s = llmdecode.shapes(tiny_lm)
    assert (s.layers, s.heads, s.head_dim) == (2, 2, 8)
    ids = np.arange(12, dtype="int32").reshape(3, 4)
    cache = llmdecode.keras_cache(tiny_lm, ids, max_length=10)
    assert tuple(cache.shape) == (3, 2, 2, 10, 2, 8)
    # 2 x 2 layers x 2 heads x 8 x 10 tokens x 3 requests x 4 bytes
    assert llmdecode.cache_bytes(cache) == llmmemory.kv_cache_bytes(2, 2, 8, 10, 3, "fp32") == 7680
    with pytest.raises(ValueError):
        llmdecode.keras_cache(tiny_lm, ids, max_length=3)
    with pytest.raises(ValueError, match="Unknown GPT-2"):
        llmdecode.build_decoder(layers=3)


def test_decode_step_equals_a_full_forward_pass(tiny_lm):
    step = llmdecode.compiled_step(tiny_lm)
    phases = llmdecode.Phases(tiny_lm, batch=2, prompt=5, max_length=8, seed=1, step=step)
    other = llmdecode.Phases(tiny_lm, batch=1, prompt=3, max_length=6, seed=1, step=step)
    assert np.asarray(other.decode()).shape == (1, 50)
    assert len(step.get_concrete_function().graph.inputs) >= 3 and step.experimental_get_tracing_count() == 1
    prefill = np.asarray(phases.prefill())
    decode = np.asarray(phases.decode())
    assert prefill.shape == decode.shape == (2, 50)
    ids = np.concatenate([np.asarray(phases.prompt_ids), np.asarray(phases.next_ids)], axis=1)
    full = np.asarray(tiny_lm.backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
    logits = full @ np.asarray(tiny_lm.backbone.token_embedding.embeddings).T
    np.testing.assert_allclose(prefill, logits[:, 4], atol=1e-4)     # last prompt token
    np.testing.assert_allclose(decode, logits[:, 5], atol=1e-4)      # the new token, from the cache
    assert not np.allclose(prefill, decode, atol=1e-3)
    with pytest.raises(ValueError):
        llmdecode.Phases(tiny_lm, batch=1, prompt=8, max_length=8)
