import numpy as np
import pytest

from conftest import SHARED, TINY_VECTORS, write_vectors
from models.modules import word_vectors as wv
from module_checks import assert_token_functions_agree, fit_once


def embed(module_path, texts):
    import tensorflow as tf
    import tensorflow_hub as hub
    return hub.KerasLayer(str(module_path), input_shape=[], dtype=tf.string)(tf.constant(texts)).numpy()


@pytest.fixture(scope="module")
def tiny_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    write_vectors(folder / "vectors.txt")
    tokens, vectors = wv.read_vectors(folder / "vectors.txt")
    return wv.export_word_module(folder / "module", tokens, vectors, oov_buckets=2, lowercase=True)


def test_glove_text_tokens_with_spaces_are_parsed_from_the_right(tmp_path):
    (tmp_path / "v.txt").write_text("the 1 2 3\nat\u00a0home 4 5 6\nnew york 7 8 9\n")
    tokens, vectors = wv.read_vectors(tmp_path / "v.txt")
    assert tokens == ["the", "at\u00a0home", "new york"] and vectors[2].tolist() == [7, 8, 9]


def test_fasttext_vec_header_line_is_skipped(tmp_path):
    (tmp_path / "v.vec").write_text("2 3\nthe 1 2 3\ncat 4 5 6\n")
    tokens, vectors = wv.read_vectors(tmp_path / "v.vec")
    assert tokens == ["the", "cat"] and vectors.shape == (2, 3)


def test_word2vec_binary_is_read(tmp_path):
    data = b"2 3\n" + b"the " + np.array([1, 2, 3], "<f4").tobytes() + b"\ncat " + np.array([4, 5, 6], "<f4").tobytes()
    (tmp_path / "v.bin").write_bytes(data)
    tokens, vectors = wv.read_vectors(tmp_path / "v.bin")
    assert tokens == ["the", "cat"] and vectors[1].tolist() == [4, 5, 6]


def test_paragram_latin1_bytes_are_decoded_with_errors_ignored(tmp_path):
    (tmp_path / "v.txt").write_bytes(b"caf\xe9 1 2\nthe 3 4\n")
    tokens, _ = wv.read_vectors(tmp_path / "v.txt")
    assert tokens == ["caf", "the"]


def test_vocabulary_limit_keeps_the_first_words(tmp_path):
    write_vectors(tmp_path / "v.txt")
    tokens, _ = wv.read_vectors(tmp_path / "v.txt", vocab_limit=3)
    assert tokens == ["why", "how", "silly"]


def test_the_real_glove_840b_sample_loads():
    path = SHARED / "vectors" / "glove.840B.300d.top500.txt"
    if not path.exists():
        pytest.skip(f"{path} absent")
    tokens, vectors = wv.read_vectors(path)
    assert len(tokens) == 500 and vectors.shape == (500, 300) and np.isfinite(vectors).all()


def test_the_module_combines_known_words_with_sqrt_n(tiny_module):
    v = {w: np.array(x, np.float32) for w, x in TINY_VECTORS.items()}
    out = embed(tiny_module, ["Why is the silly?", "why"])
    np.testing.assert_allclose(out[0], (v["why"] + v["is"] + v["the"] + v["silly"] + v["?"]) / np.sqrt(5), atol=1e-6)
    np.testing.assert_allclose(out[1], v["why"], atol=1e-6)


def test_unknown_words_count_but_start_at_zero_and_empty_text_is_zero(tiny_module):
    out = embed(tiny_module, ["why zebra", ""])
    np.testing.assert_allclose(out[0], np.array(TINY_VECTORS["why"]) / np.sqrt(2), atol=1e-6)
    assert not out[1].any()


def test_token_embeddings_are_each_words_vector(tiny_module):
    import tensorflow_hub as hub
    module = hub.load(str(tiny_module))
    rows = assert_token_functions_agree(module, ["Why silly?", ""]).to_list()
    np.testing.assert_allclose(rows[0], [TINY_VECTORS["why"], TINY_VECTORS["silly"], TINY_VECTORS["?"]])
    assert rows[1] == []


def test_the_token_cache_holds_every_texts_tokens_in_its_own_order(tiny_module, workspace):
    import tensorflow as tf
    import tensorflow_hub as hub
    from models.embed_cache import cached_token_embeddings
    texts = np.array(["why is the silly thing?", "how", "", "fix the how why?", "why"] * 3, dtype=object)
    values, offsets = cached_token_embeddings(str(tiny_module), texts, "texts")
    module = hub.load(str(tiny_module))
    expected = module.token_embeddings(tf.constant(list(texts)))
    assert values.dtype == np.float16 and offsets.tolist() == [0, *np.cumsum(expected.row_lengths().numpy())]
    np.testing.assert_allclose(values, expected.flat_values.numpy(), atol=1e-3)
    again = cached_token_embeddings(str(tiny_module), texts, "texts")    # read from the cache, not recomputed
    assert isinstance(again[0], np.memmap) and np.array_equal(again[1], offsets)


@pytest.mark.parametrize("trainable", [True, False])
def test_weights_change_only_when_fine_tuned(tiny_module, trainable):
    fit = fit_once(tiny_module, trainable, ["why silly", "how fix"], [1.0, 0.0])
    assert (fit.changed > 0) == trainable


def test_make_module_cli_writes_models_hub_name(workspace):
    write_vectors(workspace / "v.txt")
    wv.main(["--vectors", str(workspace / "v.txt"), "--name", "mine", "--lowercase"])
    assert (workspace / "models" / "hub" / "mine" / "saved_model.pb").exists()
