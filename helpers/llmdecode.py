"""A generative decoder's two phases, prefill and decode, with KerasHub's GPT-2 and its KV cache.

A decoder-only language model answers in two phases. **Prefill** runs the whole prompt through
the model at once (a matrix-matrix product per layer: compute-bound) and fills the KV cache;
**decode** then produces one token per step for every request, reading every weight once per
step for a single new row (a matrix-vector product: memory-bound). This module builds a
GPT-2-small-sized model from KerasHub's architecture with **random weights** (it measures memory
and speed, not the quality of any text), and times the two phases with the cache KerasHub uses:
one tensor ``[batch, layers, 2, max_length, heads, head_dim]``, allocated by KerasHub's own
``_build_cache`` (what ``generate()`` calls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GPT2_SMALL = {"vocabulary_size": 50257, "num_layers": 12, "num_heads": 12, "hidden_dim": 768,
              "intermediate_dim": 3072, "max_sequence_length": 1024}


def build_decoder(seed: int = 42, **overrides):
    """``keras_hub.models.GPT2CausalLM`` with GPT-2 small's shapes (``overrides`` change them) and
    random weights, without a preprocessor (it takes token ids)."""
    import keras
    import keras_hub

    unknown = set(overrides) - set(GPT2_SMALL)
    if unknown:
        raise ValueError(f"Unknown GPT-2 settings {sorted(unknown)}: use {sorted(GPT2_SMALL)}")
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(**{**GPT2_SMALL, **overrides})
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)


@dataclass(frozen=True)
class Shapes:
    """What sets a decoder's cache: layers, heads and the size of each head."""

    layers: int
    heads: int
    head_dim: int


def shapes(lm) -> Shapes:
    """Layers, heads and head size of a KerasHub causal LM's backbone."""
    backbone = lm.backbone
    return Shapes(backbone.num_layers, backbone.num_heads, backbone.hidden_dim // backbone.num_heads)


def keras_cache(lm, prompt_ids, max_length: int):
    """The KV cache KerasHub itself allocates, as ``GPT2CausalLM.generate`` does: the prompt padded
    to ``max_length`` with zeros, then ``lm._build_cache`` (its tensor ``[batch, layers, 2,
    max_length, heads, head_dim]`` in the compute dtype, seeded by a pass over the padded ids)."""
    from keras import ops

    batch, prompt = prompt_ids.shape
    if batch < 1 or not 1 <= prompt <= max_length:
        raise ValueError(f"need batch >= 1, 1 <= prompt <= max_length; got {batch}, {prompt}, {max_length}")
    padded = ops.pad(prompt_ids, [[0, 0], [0, max_length - prompt]])
    _, cache = lm._build_cache(padded)
    return cache


def cache_bytes(cache) -> int:
    """Bytes the cache tensor holds (elements × bytes per element)."""
    return int(np.prod(cache.shape)) * cache.dtype.size


def compiled_step(lm):
    """``lm.call_with_cache`` compiled once for any batch, length and position (a ``tf.function``
    with an input signature of unknown dimensions): ``step(ids, cache, index) -> (logits, cache)``."""
    import tensorflow as tf

    s = shapes(lm)
    signature = [tf.TensorSpec([None, None], tf.int32),
                 tf.TensorSpec([None, s.layers, 2, None, s.heads, s.head_dim], lm.compute_dtype),
                 tf.TensorSpec([], tf.int32)]
    return tf.function(lambda ids, cache, index: lm.call_with_cache(ids, cache, index)[::2],
                       input_signature=signature)


class Phases:
    """Compiled prefill and decode steps of one model on fixed shapes (``batch`` requests, a
    ``prompt``-token prompt, room for ``max_length`` tokens).

    :meth:`prefill` runs the prompt through the model and fills the cache; :meth:`decode` runs one
    step for one new token per request at position ``prompt`` (the cache already filled), which
    is what each step of generation costs at that length. ``step``: a :func:`compiled_step` of
    ``lm`` to share (each new one is traced again).
    """

    def __init__(self, lm, batch: int, prompt: int, max_length: int, seed: int = 0, step=None):
        import tensorflow as tf

        if not 1 <= prompt < max_length:
            raise ValueError(f"need 1 <= prompt < max_length, got {prompt}, {max_length}")
        rng = np.random.default_rng(seed)
        vocabulary = lm.backbone.vocabulary_size
        self.prompt_ids = tf.constant(rng.integers(0, vocabulary, (batch, prompt)), tf.int32)
        self.next_ids = tf.constant(rng.integers(0, vocabulary, (batch, 1)), tf.int32)
        self.batch, self.prompt, self.max_length = batch, prompt, max_length
        self.cache = keras_cache(lm, self.prompt_ids, max_length)     # KerasHub's own allocation
        self._step = step or compiled_step(lm)       # share one across Phases of a model: one trace
        self.index = tf.constant(prompt, tf.int32)
        _, self.cache = self._step(self.prompt_ids, self.cache, tf.constant(0, tf.int32))

    def prefill(self):
        """Logits of the prompt's last token after a full pass over the prompt (cache filled)."""
        import tensorflow as tf

        logits, _ = self._step(self.prompt_ids, self.cache, tf.constant(0, tf.int32))
        return logits[:, -1]

    def decode(self):
        """Logits of one new token per request, attending to the ``prompt`` cached tokens."""
        logits, _ = self._step(self.next_ids, self.cache, self.index)
        return logits[:, -1]
