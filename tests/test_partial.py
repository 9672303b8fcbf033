"""Partial fine-tuning (trainable_layers = n): MiniLM's layers split at any depth, the cache of the states
below the top n layers, dropout only in training, and the fold loop, on the MiniLM module built once per
session (conftest.minilm_path)."""
from __future__ import annotations

import shutil

import re

import numpy as np
import pandas as pd
import pytest

import core  # noqa: F401  (before TensorFlow)
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the module needs)

from conftest import here, select_workspace, small_config, write_competition
from core.data import load_train
from core.errors import PipelineError
from folds import make_folds
from models import caches, train
from conftest import artifacts, record_folds
from tests.minilm_reference import Reference

TEXTS = ["What is a hub module?", "Why do cats purr when they are happy, and why when they are hurt?",
         "", "Is it true that all politicians are liars and thieves?", " ".join(["long question"] * 80)]


@pytest.fixture(scope="module")
def module(minilm_path):
    return tf.saved_model.load(str(minilm_path))


def test_cached_bottom_states_and_the_top_layers_give_the_module_output(module, minilm_path, workspace):
    from models.batches import token_dataset
    from models.networks import ModuleTop
    from models.kinds.partial import bottom_states
    texts = np.array(TEXTS, dtype=object)
    expected = module(tf.constant(TEXTS)).numpy()
    for n in (2, 6):                                             # a split inside, and below every layer
        values, offsets = bottom_states(here(), str(minilm_path), texts, "test", n)      # float16, memory-mapped
        assert values.dtype == np.float16 and values.shape == (offsets[-1], 384)
        assert np.diff(offsets).tolist() == module.tokenize(tf.constant(TEXTS)).row_lengths().numpy().tolist()
        top = ModuleTop(str(minilm_path), n)
        assert len(top.trainable_weights) == 16 * n                 # the top n layers' weights, nothing below
        [((states, lengths),)] = token_dataset(values, offsets, np.arange(len(texts)), None, len(texts))
        ours = top([tf.cast(states, tf.float32), lengths], training=False).numpy()
        np.testing.assert_allclose(ours, expected, atol=5e-4)       # float16 states: ~1e-4
    assert len(list((workspace / "models" / ".cache" / "tokens").glob("*/bottom_states.n_top=*/*.offsets.npy"))) == 2


def test_dropout_acts_only_when_training(module, minilm_path, minilm_wheel):
    import tensorflow_hub as hub
    batch = tf.constant(TEXTS[:2])
    plain = module(batch).numpy()
    np.testing.assert_array_equal(module(batch, training=False).numpy(), plain)
    reference = Reference(minilm_wheel).embed(TEXTS[:2])                            # the original, no dropout
    assert ((plain * reference).sum(1) / np.linalg.norm(reference, axis=1)).min() >= 0.999
    first, second = module(batch, training=True).numpy(), module(batch, training=True).numpy()
    assert np.abs(first - second).max() > 1e-3 and np.abs(first - plain).max() > 1e-3
    layer = hub.KerasLayer(str(minilm_path), trainable=True)        # hub.KerasLayer passes `training`
    np.testing.assert_array_equal(layer(batch).numpy(), plain)
    assert np.abs(layer(batch, training=True).numpy() - plain).max() > 1e-3
    states = module.bottom_states(batch, 2)
    dense, lengths = states.to_tensor(), tf.cast(states.row_lengths(), tf.int32)
    top = [module.top_layers(dense, lengths, 2, training=t).numpy() for t in (False, False, True, True)]
    np.testing.assert_array_equal(top[0], top[1])
    assert np.abs(top[2] - top[3]).max() > 1e-3


def _partial_model(workspace, minilm_path, name="tiny-partial", n=1, extra=""):
    with open(workspace / "pipeline.toml", "a") as config:
        config.write(f'\n[models.{name}]\nhandle = "{minilm_path}"\noutput_dim = 384\ntrainable = true\n'
                     f'trainable_layers = {n}\nmodule_lr = 1e-4\n{extra}')


@pytest.fixture
def competition(workspace, minilm_path):
    write_competition(workspace)
    make_folds.main()
    _partial_model(workspace, minilm_path)
    return workspace


@pytest.fixture(scope="module")
def trained(minilm_path, tmp_path_factory):
    """tiny-partial (top 1 layer, 2 epochs) trained on 2 folds, once for the tests below: (workspace, the
    texts whose bottom states were computed, and with what)."""
    root = tmp_path_factory.mktemp("trained")
    computed, real = [], caches._fill_tokens
    with pytest.MonkeyPatch.context() as patch:
        select_workspace(root, patch)
        patch.setattr(caches, "_fill_tokens",
                      lambda *args: computed.append((len(args[3]), args[5:7])) or real(*args))
        (root / "pipeline.toml").write_text(small_config(k=2))
        write_competition(root)
        make_folds.main()
        _partial_model(root, minilm_path)
        train.main(["--model", "tiny-partial"])
    return root, computed


def test_the_bottom_layers_run_once_per_text_however_many_folds_and_epochs(trained, minilm_path, monkeypatch):
    root, computed = trained
    _, _, metrics = artifacts(root, "tiny-partial")
    assert metrics["path"] == "partial" and metrics["trainable_layers"] == 1 and metrics["module_layers"] == 6
    assert [f["epochs"] for f in metrics["folds"]] == [2, 2]
    assert computed == [(60, ("bottom_states", {"n_top": 1})), (20, ("bottom_states", {"n_top": 1}))]
    select_workspace(root, monkeypatch)
    monkeypatch.setattr(caches, "_fill_tokens", lambda *args: computed.append("again"))
    from models.kinds.partial import bottom_states
    bottom_states(here(), str(minilm_path), load_train(here()).texts, "train", 1)   # another model on the same texts: cached
    assert "again" not in computed
    weights = tf.train.load_checkpoint(str(root / "models" / "tiny-partial" / "fold0" / "weights"))
    saved = [k for k in weights.get_variable_to_shape_map() if "VARIABLE_VALUE" in k and "optimizer" not in k]
    assert len(saved) == 16 + 2 * 2                               # the top layer's weights and the head's only


def test_a_fold_killed_during_partial_fine_tuning_resumes(trained, workspace, monkeypatch):
    shutil.copytree(trained[0], workspace, dirs_exist_ok=True)
    out = workspace / "models" / "tiny-partial"
    before = np.load(out / "oof.npy")
    for leftover in ["oof.npy", "test.npy", "metrics.json", "fold1"]:
        path = out / leftover
        path.unlink() if path.is_file() else shutil.rmtree(path)   # as if killed in fold 1
    retrained = record_folds(monkeypatch)
    train.main(["--model", "tiny-partial"])
    assert retrained == [1]
    oof, _, metrics = artifacts(workspace, "tiny-partial")
    assert np.isfinite(oof).all() and [f["fold"] for f in metrics["folds"]] == [0, 1]
    fold0 = pd.read_csv(workspace / "folds" / "folds.csv")["fold"].to_numpy() == 0
    np.testing.assert_array_equal(oof[fold0], before[fold0])        # the finished fold kept, not retrained


@pytest.mark.parametrize("table, message", [
    ("trainable_layers = 0\ntrainable = true", "trainable_layers must be at least 1, got 0"),
    ("trainable_layers = 1.5\ntrainable = true", "trainable_layers must be a whole number, got 1.5"),
    ("trainable_layers = true\ntrainable = true", "trainable_layers must be a whole number, got True"),
    ("trainable_layers = 2", "has key(s) ['trainable_layers'] that kind 'frozen' does not take"),
    ('trainable_layers = 2\ntrainable = true\nfeatures = "tokens"', "trainable = True does not fit kind = 'tokens'"),
])
def test_trainable_layers_is_checked_when_the_catalogue_is_read(workspace, table, message):
    from core.config import load_config
    from models.catalogue import catalogue
    with open(workspace / "pipeline.toml", "a") as config:
        config.write(f'\n[models.bad]\nhandle = "tiny"\noutput_dim = 4\n{table}\n')
    with pytest.raises(PipelineError, match=re.escape(f"[models.bad] {message}")):
        catalogue(here().config)


def test_trainable_layers_beyond_the_module_or_on_a_module_without_layers_is_refused(competition, minilm_path,
                                                                                    capsys):
    from conftest import write_vectors
    from models.modules.build import main as build_modules
    _partial_model(competition, minilm_path, "too-deep", n=7)
    with pytest.raises(SystemExit):
        train.main(["--model", "too-deep"])
    assert "[models.too-deep] trainable_layers = 7: the module" in capsys.readouterr().err
    write_vectors(competition / "vectors.txt")
    build_modules(["--name", "tiny"])
    with open(competition / "pipeline.toml", "a") as config:
        config.write('\n[models.flat]\nhandle = "tiny"\noutput_dim = 4\ntrainable = true\ntrainable_layers = 1\n')
    with pytest.raises(SystemExit):
        train.main(["--model", "flat"])
    err = capsys.readouterr().err
    assert "[models.flat] kind 'partial' needs a module that exposes its layers" in err and "rebuild" in err
    train.main(["--model", "tiny-frozen"])          # models without the option keep the stamps they had
    assert "trainable_layers" not in (competition / "models" / "tiny-frozen" / "stamp.json").read_text()


# ---- full fine-tuning on token ids, lazy Adam, bfloat16 ----

def test_lazy_adam_moves_only_the_rows_a_batch_used():
    import tf_keras as keras
    from models.training import LazyAdam
    lazy, dense = tf.Variable(np.ones((5, 2), np.float32)), tf.Variable(np.ones((5, 2), np.float32))
    lazy_opt, dense_opt = LazyAdam(0.1), keras.optimizers.Adam(0.1)
    first = tf.IndexedSlices(tf.constant([[1.0, 2.0], [3.0, 4.0], [1.0, 1.0]]), tf.constant([1, 3, 1]), [5, 2])
    lazy_opt.apply_gradients([(first, lazy)])
    dense_opt.apply_gradients([(tf.convert_to_tensor(first), dense)])
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), atol=1e-6)        # the first step is Adam's
    assert (lazy.numpy()[[0, 2, 4]] == 1).all() and (lazy.numpy()[[1, 3]] != 1).all()
    second = tf.IndexedSlices(tf.constant([[1.0, 1.0]]), tf.constant([0]), [5, 2])
    before = lazy.numpy().copy()
    lazy_opt.apply_gradients([(second, lazy)])
    assert (lazy.numpy()[1:] == before[1:]).all() and (lazy.numpy()[0] != 1).all()   # row 3's momentum waits


def test_lazy_adam_steps_dense_gradients_as_keras_adam_does():
    import tf_keras as keras
    from models.training import LazyAdam
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    fused, plain = tf.Variable(start), tf.Variable(start)
    fused_opt, plain_opt = LazyAdam(0.01), keras.optimizers.Adam(0.01)
    for _ in range(3):
        gradient = tf.constant(rng.normal(size=(4, 3)).astype(np.float32))
        fused_opt.apply_gradients([(gradient, fused)])
        plain_opt.apply_gradients([(gradient, plain)])
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), atol=1e-6)


def test_full_fine_tuning_trains_every_layer_and_the_embeddings_on_token_ids(workspace, tiny_mpnet):
    (workspace / "pipeline.toml").write_text(small_config(k=2))
    write_competition(workspace)
    make_folds.main()
    with open(workspace / "pipeline.toml", "a") as config:
        config.write(f'\n[models.tiny-full]\nkind = "full"\nhandle = "{tiny_mpnet}"\noutput_dim = 8\n'
                     f'module_lr = 1e-4\nepochs = 1\n')
    train.main(["--model", "tiny-full"])
    oof, _, metrics = artifacts(workspace, "tiny-full")
    assert metrics["path"] == "full" and metrics["trainable_layers"] == 3 and np.isfinite(oof).all()
    assert list((workspace / "models" / ".cache" / "tokens").glob("*/ids/*.offsets.npy"))   # tokenized once
    weights = tf.train.load_checkpoint(str(workspace / "models" / "tiny-full" / "fold0" / "weights"))
    saved = [k for k in weights.get_variable_to_shape_map() if "VARIABLE_VALUE" in k and "optimizer" not in k]
    assert len(saved) == 16 * 3 + 5 + 2 * 2       # every layer, the embeddings with the relative bias, the head


def test_a_partial_step_under_mixed_bfloat16_moves_float32_weights_with_a_finite_loss(tiny_mpnet, workspace):
    import tf_keras as keras
    from models.batches import token_dataset
    from models.kinds.partial import PartialOptions, bottom_states
    from models.networks import top_model
    texts = np.array(TEXTS * 4, dtype=object)
    values, offsets = bottom_states(here(), tiny_mpnet, texts, "test", 1, compute_dtype="bfloat16")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        spec = PartialOptions(handle="x", trainable_layers=1, head=(8,), epochs=1, batch_size=4)
        model = top_model(spec, tiny_mpnet, 1, 5, values, "bfloat16")
        top = model.get_layer("module_top")
        before = [w.numpy().copy() for w in top.trainable_weights]
        history = model.fit(token_dataset(values, offsets, np.arange(len(texts)), np.arange(len(texts)) % 2 * 1.0,
                                          4), epochs=1, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(history.history["loss"]).all()
    assert all(w.dtype == tf.float32 for w in top.trainable_weights)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, top.trainable_weights))


def test_caches_of_a_module_that_takes_a_precision_are_kept_apart_by_it(tiny_mpnet, workspace):
    from models.caches import cached_embeddings
    texts = np.array(TEXTS, dtype=object)
    f32 = cached_embeddings(here(), tiny_mpnet, texts, "test")
    bf16 = cached_embeddings(here(), tiny_mpnet, texts, "test", "bfloat16")
    folders = {p.parent.name for p in (workspace / "models" / ".cache" / "embeddings").glob("**/*.npy")}
    assert len(folders) == 2 and any("bfloat16" in folder for folder in folders)
    assert ((f32 * bf16).sum(1) > 0.998).all() and not np.array_equal(f32, bf16)


def test_every_fold_starts_from_the_pretrained_weights_though_the_module_loads_once(minilm_path):
    from models.handles import LOADED
    from models.networks import ModuleTop
    first = ModuleTop(str(minilm_path), 1)
    pretrained = first.top_weights[0].numpy().copy()
    first.top_weights[0].assign_add(tf.ones_like(first.top_weights[0]))        # as a fold's training would
    second = ModuleTop(str(minilm_path), 1)
    np.testing.assert_array_equal(second.top_weights[0].numpy(), pretrained)
    assert len(LOADED) >= 1 and second._module is first._module


def test_a_bottom_state_pass_fills_the_sentence_cache_with_what_the_module_computes(module, minilm_path, workspace,
                                                                                     monkeypatch):
    from models.caches import cached_embeddings
    from models.kinds.partial import bottom_states
    texts = np.array(TEXTS * 3, dtype=object)
    bottom_states(here(), str(minilm_path), texts, "test", 2)
    monkeypatch.setattr(caches, "module_calls", lambda *args: pytest.fail("embedded a second time"))
    np.testing.assert_allclose(cached_embeddings(here(), str(minilm_path), texts, "test"),
                               module(tf.constant(list(texts))).numpy(), atol=1e-6)
