import numpy as np
import pytest

from conftest import SHARED, TINY_VECTORS, here, write_vectors
from core.errors import PipelineError
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
    from models.caches import cached_token_embeddings
    texts = np.array(["why is the silly thing?", "how", "", "fix the how why?", "why"] * 3, dtype=object)
    values, offsets = cached_token_embeddings(here(), str(tiny_module), texts, "texts")
    module = hub.load(str(tiny_module))
    expected = module.token_embeddings(tf.constant(list(texts)))
    assert values.dtype == np.float16 and offsets.tolist() == [0, *np.cumsum(expected.row_lengths().numpy())]
    np.testing.assert_allclose(values, expected.flat_values.numpy(), atol=1e-3)
    again = cached_token_embeddings(here(), str(tiny_module), texts, "texts")    # read from the cache, not recomputed
    assert isinstance(again[0], np.memmap) and np.array_equal(again[1], offsets)


@pytest.mark.parametrize("trainable", [True, False])
def test_weights_change_only_when_fine_tuned(tiny_module, trainable):
    fit = fit_once(tiny_module, trainable, ["why silly", "how fix"], [1.0, 0.0])
    assert (fit.changed > 0) == trainable


def test_make_module_cli_writes_models_hub_name(workspace):
    write_vectors(workspace / "v.txt")
    wv.main(["--vectors", str(workspace / "v.txt"), "--name", "mine", "--lowercase"])
    assert (workspace / "models" / "hub" / "mine" / "saved_model.pb").exists()


# ---------------------------------------------------------------- combined embeddings
GLOVE_840B_500 = SHARED / "vectors" / "glove.840B.300d.top500.txt"


def sha256(path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def real_glove():
    if not GLOVE_840B_500.exists():
        pytest.skip(f"{GLOVE_840B_500} absent")
    return GLOVE_840B_500


def test_a_single_file_module_is_byte_identical_to_the_one_built_before_combined_vectors(tmp_path):
    # hashes of the files the builder wrote before `vectors` could be a list: every cache is keyed on them
    write_vectors(tmp_path / "v.txt")
    module = wv.build(tmp_path / "module", wv.WordVectorOptions(str(tmp_path / "v.txt"), oov_buckets=4), here())
    assert sha256(module / "variables" / "variables.index") == \
        "5b6f1703bcfebc843ac56c083653f167987d1f56a8cd94e225cccc628d46fdea"
    assert sha256(module / "variables" / "variables.data-00000-of-00001") == \
        "3bff488daf627a523fd374229cec1948bd151b17f1bac67f28dd6e10d00bdab1"
    assert sha256(module / "assets" / "tokens.txt") == \
        "ab7f3094cd6ab34beb2d901ff5c930a5c2df22e824da2270fe8e7321806859e8"


def test_a_single_real_glove_module_is_byte_identical_to_the_one_built_before_combined_vectors(tmp_path):
    options = wv.WordVectorOptions(str(real_glove()), lowercase=True, oov_buckets=10)
    module = wv.build(tmp_path / "module", options, here())
    assert sha256(module / "variables" / "variables.index") == \
        "631697a196918509edb01df9e696324fd126c4eedbde4416a7c4aa1d4cc6f192"
    assert sha256(module / "assets" / "tokens.txt") == \
        "1b1337bd777aabb992b197cdffcd382ce3d72b294833753a9d6a5e7382b81d97"


def small_file(path, words: dict[str, list[float]]):
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in words.items()))
    return path


def test_concatenated_vectors_hold_each_files_vector_side_by_side_and_zeros_where_a_file_lacks_the_word(tmp_path):
    glove = real_glove()
    other = small_file(tmp_path / "other.txt", {"The": [1, 2], "zebraish": [3, 4], "the": [9, 9]})
    tokens, vectors = wv.combined_vectors([glove, other], None, True, "concat")
    g_tokens, g_vectors = wv.usable_vocabulary(*wv.read_vectors(glove), lowercase=True)
    assert tokens == g_tokens + ["zebraish"] and vectors.shape == (len(g_tokens) + 1, 302)
    row = {t: i for i, t in enumerate(tokens)}
    np.testing.assert_array_equal(vectors[row["the"]], np.r_[g_vectors[g_tokens.index("the")], 1, 2])  # first spelling
    np.testing.assert_array_equal(vectors[row["zebraish"]], np.r_[np.zeros(300), 3, 4])
    np.testing.assert_array_equal(vectors[row["and"]], np.r_[g_vectors[g_tokens.index("and")], 0, 0])


def test_the_weighted_mean_is_0_7_of_the_first_file_and_0_3_of_the_second(tmp_path):
    glove = real_glove()
    other = small_file(tmp_path / "paragram.txt", {"the": [1.0] * 300, "qwertyish": [2.0] * 300})
    tokens, vectors = wv.combined_vectors([glove, other], None, True, "mean", (0.7, 0.3))
    g_tokens, g_vectors = wv.usable_vocabulary(*wv.read_vectors(glove), lowercase=True)
    row = {t: i for i, t in enumerate(tokens)}
    np.testing.assert_allclose(vectors[row["the"]], 0.7 * g_vectors[g_tokens.index("the")] + 0.3, rtol=1e-6)
    np.testing.assert_allclose(vectors[row["and"]], 0.7 * g_vectors[g_tokens.index("and")], rtol=1e-6)
    np.testing.assert_allclose(vectors[row["qwertyish"]], 0.6, rtol=1e-6)


def test_vocab_limit_caps_the_union_in_the_first_files_order(tmp_path):
    first = small_file(tmp_path / "a.txt", {"why": [1], "how": [2], "what": [3]})
    second = small_file(tmp_path / "b.txt", {"new": [4], "how": [5], "other": [6]})
    tokens, vectors = wv.combined_vectors([first, second], 4, False, "concat")
    assert tokens == ["why", "how", "what", "new"]
    assert vectors.tolist() == [[1, 0], [2, 5], [3, 0], [0, 4]]


def test_a_mean_of_vectors_of_different_sizes_is_refused_naming_the_files(tmp_path):
    first = small_file(tmp_path / "a.txt", {"why": [1, 2]})
    second = small_file(tmp_path / "b.txt", {"why": [3]})
    with pytest.raises(PipelineError, match=r'combine = "mean" needs vectors of one size.*a.txt.*b.txt'):
        wv.combined_vectors([first, second], None, False, "mean")


def test_make_modules_builds_one_module_from_two_vector_files(workspace):
    import tensorflow as tf
    import tensorflow_hub as hub
    from models.modules.build import main as build_modules
    small_file(workspace / "other.txt", {"the": [1, 2], "zebraish": [3, 4]})
    config = workspace / "pipeline.toml"
    config.write_text(config.read_text() + f'\n[modules.both]\nbuilder = "word-vectors"\n'
                      f'vectors = ["{real_glove()}", "other.txt"]\nlowercase = true\noov_buckets = 2\n')
    build_modules(["--name", "both"])
    module = hub.load(str(workspace / "models" / "hub" / "both"))
    rows = module.token_embeddings(tf.constant(["The zebraish"])).to_list()[0]
    assert len(rows) == 2 and len(rows[0]) == 302 and rows[0][300:] == [1, 2] and rows[1] == [0] * 300 + [3, 4]
