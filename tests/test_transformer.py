"""The shared transformer encoder on tiny hand-made configurations, against plain numpy maths.

MPNet's layout (positions after the padding index, a relative position bias shared by the layers) and
BERT's (absolute positions, token type 0), random weights; what is checked is the maths and the layer
split, not a pretrained model (the real MiniLM and MPNet are checked against their originals in
test_minilm.py, test_mpnet.py and `make bench ONLY=mpnet`).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import core  # noqa: F401  (before TensorFlow)
import tensorflow as tf

from models.modules.transformer import Architecture, Encoder, relative_buckets
from models.modules.wordpiece import WordPiece

VOCAB = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>", "why", "is", "the", "sky", "blue", "?", "how",
         "do", "birds", "fly", "##s", "a"]
WIDTH, HEADS, INNER, LAYERS, POSITIONS = 8, 2, 16, 3, 40
LAYER = "l.{i}."
NAMES = {"word": "e.word", "position": "e.pos", "token_type": "e.type", "embeddings_norm": "e.norm",
         "relative_bias": "rel", "query": LAYER + "q", "key": LAYER + "k", "value": LAYER + "v",
         "attention_output": LAYER + "o", "attention_norm": LAYER + "n1", "intermediate": LAYER + "i",
         "output": LAYER + "out", "output_norm": LAYER + "n2"}
TEXTS = ["why is the sky blue?", "how do birds fly", "a", "", "why why why is the the sky sky blue blue? ?"]


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """torch's layout: Linear weights [out, in]."""
    rng = np.random.default_rng(seed)
    w = {"e.word.weight": rng.normal(size=(len(VOCAB), WIDTH)), "e.pos.weight": rng.normal(size=(POSITIONS, WIDTH)),
         "e.type.weight": rng.normal(size=(2, WIDTH)), "rel.weight": rng.normal(size=(32, HEADS)),
         "e.norm.weight": 1 + 0.1 * rng.normal(size=WIDTH), "e.norm.bias": 0.1 * rng.normal(size=WIDTH)}
    shapes = {"q": (WIDTH, WIDTH), "k": (WIDTH, WIDTH), "v": (WIDTH, WIDTH), "o": (WIDTH, WIDTH),
              "i": (INNER, WIDTH), "out": (WIDTH, INNER)}
    for i in range(LAYERS):
        for name, shape in shapes.items():
            w[f"l.{i}.{name}.weight"] = rng.normal(size=shape) / math.sqrt(shape[1])
            w[f"l.{i}.{name}.bias"] = 0.1 * rng.normal(size=shape[0])
        for name in ("n1", "n2"):
            w[f"l.{i}.{name}.weight"] = 1 + 0.1 * rng.normal(size=WIDTH)
            w[f"l.{i}.{name}.bias"] = 0.1 * rng.normal(size=WIDTH)
    return {k: v.astype(np.float32) for k, v in w.items()}


def tiny(positions: str, max_length: int = 16) -> tuple[Encoder, dict]:
    mpnet = positions == "after_padding"
    arch = Architecture(layers=LAYERS, width=WIDTH, heads=HEADS, eps=1e-5, max_positions=POSITIONS, names=NAMES,
                        positions=positions, pad_id=1 if mpnet else 0, relative_buckets=32 if mpnet else 0)
    tokenizer = WordPiece(VOCAB, max_length, ("<s>", "<pad>", "</s>", "[UNK]", "<mask>"), "<s>", "</s>", "[UNK]")
    unused = "e.type.weight" if mpnet else "rel.weight"   # MPNet has no token types, BERT no relative bias
    weights = {k: v for k, v in random_weights().items() if k != unused}
    return Encoder(arch, weights, tokenizer, "tiny"), weights


def export_tiny_mpnet(dest) -> str:
    """The tiny MPNet-layout encoder as a hub module at `dest` (random weights: for the pipeline's mechanics)."""
    encoder, _ = tiny("after_padding")
    return str(encoder.export(dest))


# ---- an independent numpy encoder, one unpadded text at a time ----

def bucket(distance: int) -> int:
    """T5 / MPNet bidirectional bucket of key - query, 32 buckets, max distance 128, written out plainly."""
    n = -distance
    base = 16 if n < 0 else 0
    n = abs(n)
    if n < 8:
        return base + n
    return base + min(8 + int(math.log(n / 8) / math.log(128 / 8) * 8), 15)


def norm(x, w, p):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w[p + ".weight"] + w[p + ".bias"]


def linear(x, w, p):
    return x @ w[p + ".weight"].T.astype(np.float64) + w[p + ".bias"]


def numpy_embedding(ids: list[int], w: dict, positions: str) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in w.items()}
    n = len(ids)
    if positions == "absolute":
        x = w["e.word.weight"][ids] + w["e.pos.weight"][:n] + w["e.type.weight"][0]
        bias = np.zeros((HEADS, n, n))
    else:
        real = np.array(ids) != 1
        x = w["e.word.weight"][ids] + w["e.pos.weight"][np.cumsum(real) * real + 1]
        bias = np.array([[w["rel.weight"][bucket(j - i)] for j in range(n)] for i in range(n)]).transpose(2, 0, 1)
    x = norm(x, w, "e.norm")
    size = WIDTH // HEADS
    for i in range(LAYERS):
        q, k, v = (linear(x, w, f"l.{i}.{m}").reshape(n, HEADS, size).transpose(1, 0, 2) for m in "qkv")
        s = q @ k.transpose(0, 2, 1) / math.sqrt(size) + bias
        a = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((a / a.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, WIDTH)
        x = norm(x + linear(ctx, w, f"l.{i}.o"), w, f"l.{i}.n1")
        h = linear(x, w, f"l.{i}.i")
        h = 0.5 * h * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
        x = norm(x + linear(h, w, f"l.{i}.out"), w, f"l.{i}.n2")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


# ---- the checks ----

def test_relative_buckets_follow_the_t5_rule():
    table = relative_buckets(POSITIONS * 10, 32, 128)
    at = lambda d: int(table[d + POSITIONS * 10 - 1])  # noqa: E731
    assert [at(d) for d in (0, -1, -7, -8, -16, -127, -200)] == [0, 1, 7, 8, 10, 15, 15]
    assert [at(d) for d in (1, 7, 8, 16, 127, 200)] == [17, 23, 24, 26, 31, 31]
    assert all(at(d) == bucket(d) for d in range(-399, 400))


@pytest.mark.parametrize("positions", ["after_padding", "absolute"])
def test_sentence_embeddings_match_numpy(positions):
    encoder, weights = tiny(positions)
    ids = encoder.tokenize(tf.constant(TEXTS)).to_list()
    ours = encoder(tf.constant(TEXTS)).numpy()
    theirs = np.array([numpy_embedding(i, weights, positions) for i in ids])
    np.testing.assert_allclose(ours, theirs, atol=2e-5)


def test_positions_start_after_the_padding_index_and_skip_a_literal_pad():
    encoder, weights = tiny("after_padding")
    ids = encoder.tokenize(tf.constant(["why <pad> sky"])).to_list()[0]
    assert ids == [0, 6, 1, 9, 2]                      # <s> why <pad> sky </s>
    np.testing.assert_allclose(encoder(tf.constant(["why <pad> sky"])).numpy()[0],
                               numpy_embedding(ids, weights, "after_padding"), atol=2e-5)


@pytest.mark.parametrize("positions", ["after_padding", "absolute"])
def test_padding_to_a_longer_batch_changes_nothing(positions):
    encoder, _ = tiny(positions)
    alone = encoder(tf.constant(TEXTS[:1])).numpy()
    padded = encoder(tf.constant([TEXTS[0], TEXTS[-1]])).numpy()[:1]
    np.testing.assert_allclose(alone, padded, atol=1e-6)


def test_the_layer_split_recomposes_the_encoder_at_every_depth():
    encoder, _ = tiny("after_padding")
    texts = tf.constant(TEXTS)
    whole = encoder(texts).numpy()
    for n_top in range(1, LAYERS + 1):
        states = encoder.bottom_states(texts, n_top)
        lengths = tf.cast(states.row_lengths(), tf.int32)
        top = encoder.top_layers(states.to_tensor(), lengths, n_top)
        np.testing.assert_allclose(encoder.pool_states(top, lengths).numpy(), whole, atol=1e-6)


def test_token_ids_in_give_what_strings_in_give():
    encoder, _ = tiny("after_padding")
    ids = encoder.tokenize(tf.constant(TEXTS))
    lengths = tf.cast(ids.row_lengths(), tf.int32)
    states = encoder.top_layers(encoder.embed_ids(ids.to_tensor(7), lengths), lengths, LAYERS)  # any padding id
    np.testing.assert_allclose(encoder.pool_states(states, lengths).numpy(), encoder(tf.constant(TEXTS)).numpy(),
                               atol=1e-6)


def test_bfloat16_stays_close_to_float32_with_float32_outputs():
    encoder, _ = tiny("after_padding")
    f32 = encoder(tf.constant(TEXTS)).numpy()
    bf16 = encoder(tf.constant(TEXTS), compute_dtype="bfloat16")
    assert bf16.dtype == tf.float32
    assert (f32 * bf16.numpy()).sum(1).min() > 0.99


def test_a_bfloat16_training_step_moves_float32_variables_with_a_finite_loss():
    encoder, _ = tiny("after_padding")
    variables = list(encoder.weights.values())
    before = [v.numpy().copy() for v in variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(encoder(tf.constant(TEXTS), training=True, compute_dtype="bfloat16")[:, 0]))
    grads = tape.gradient(loss, variables)
    tf.keras.optimizers.SGD(0.1).apply_gradients(zip(grads, variables))
    assert np.isfinite(loss.numpy()) and all(v.dtype == tf.float32 for v in variables)
    assert sum(not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)) == len(variables)
