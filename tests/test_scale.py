"""The competition's real size: heads streamed from the caches, token caches within a disk budget, TF-IDF in chunks."""
import numpy as np
import pytest

from conftest import here, write_vectors
from core.errors import PipelineError


def test_a_streamed_head_trains_and_predicts_as_one_fed_from_memory(workspace):
    import tensorflow as tf
    import tf_keras as keras
    from core.config import load_config
    from models.batches import embedding_dataset
    from models.networks import cached_model
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(64, 3)).astype(np.float32), rng.normal(size=(64, 2)).astype(np.float32)]
    y, rows = (rng.random(64) < 0.3).astype(np.float32), np.arange(0, 64, 2)
    from models.catalogue import spec_of
    spec = spec_of(here().config, "tiny-frozen").options
    predictions = []
    in_memory = lambda: tf.data.Dataset.from_tensor_slices((np.hstack(parts)[rows], y[rows])).batch(8)  # noqa: E731
    for data in (lambda: embedding_dataset(parts, rows, y, 8), in_memory):
        keras.utils.set_random_seed(1)
        model = cached_model(spec, 5, False)
        model.fit(data(), epochs=2, verbose=0)
        predictions.append(model.predict(embedding_dataset(parts, np.arange(64), None, 8), verbose=0))
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-5, atol=1e-6)


def test_int8_token_caches_read_back_close_to_float16_in_half_the_disk(workspace):
    from models.caches import cached_token_embeddings
    from models.modules.build import main as build_modules
    write_vectors(workspace / "vectors.txt")
    build_modules([])
    texts = np.array(["why is the garden so silly?", "how do I fix my bike today?", "why"], dtype=object)
    module = str(workspace / "models" / "hub" / "tiny")
    (half, offsets), (quarter, same_offsets) = (cached_token_embeddings(here(), module, texts, "t", precision=p)
                                                for p in ("float16", "int8"))
    assert np.array_equal(offsets, same_offsets) and quarter[0:int(offsets[-1])].dtype == np.float16
    np.testing.assert_allclose(quarter[0:int(offsets[-1])], half[0:int(offsets[-1])], atol=0.01)
    assert quarter.quantized.nbytes * 2 == half.nbytes


def test_a_token_cache_over_the_disk_budget_is_refused_before_it_is_written(workspace):
    from models.caches import cached_token_embeddings
    from models.modules.build import main as build_modules
    write_vectors(workspace / "vectors.txt")
    build_modules([])
    texts = np.array(["why is the garden so silly?"] * 50, dtype=object)
    with pytest.raises(PipelineError, match=r"needs .* GB .*disk_budget_gb.*token_precision = \"int8\""):
        cached_token_embeddings(here(), str(workspace / "models" / "hub" / "tiny"), texts, "train", budget_gb=1e-9)
    assert not list((workspace / "models" / ".cache" / "tokens").rglob("*.npy"))


def test_tfidf_in_chunks_predicts_as_tfidf_in_one_piece(monkeypatch):
    from models.kinds import tfidf
    rng = np.random.default_rng(0)
    words = np.array(["garden", "bread", "silly", "why", "how", "fix", "chess", "dumb"])
    texts = np.array([" ".join(rng.choice(words, 6)) for _ in range(80)], dtype=object)
    y = np.array(["silly" in t for t in texts], dtype=int)
    whole = tfidf.fit_predict(tfidf.TfidfOptions(), texts, y, [texts])[1][0]
    monkeypatch.setattr(tfidf, "CHUNK", 7)
    np.testing.assert_allclose(tfidf.fit_predict(tfidf.TfidfOptions(), texts, y, [texts])[1][0], whole,
                               rtol=1e-6)


def test_tfidf_chooses_its_vocabulary_on_a_capped_sample(monkeypatch):
    from models.kinds import tfidf
    monkeypatch.setattr(tfidf, "VOCABULARY_ROWS", 10)
    texts = np.array([f"word{i} common" for i in range(40)], dtype=object)
    fitted, _ = tfidf.fit_predict(tfidf.TfidfOptions(), texts, np.arange(40) % 2, [texts[:3]])
    assert "common" in fitted[0].vocabulary_ and len(fitted[0].vocabulary_) <= 1 + 10 * 2


def test_scale_texts_are_distinct_and_keep_their_sources_word_counts():
    from tests.benchmarks.bench_scale import distinct_texts
    source = np.array(["why is the sky blue?", "how do I fix it?", "what now then?"], dtype=object)
    texts, picks = distinct_texts(source, 60, np.random.default_rng(0))
    assert len(set(texts)) == 60
    assert [len(t.split()) for t in texts] == [len(source[j].split()) for j in picks]
