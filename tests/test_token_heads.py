"""Recurrent token heads (token_head = "gru" | "lstm"): options checked, padding ignored, trained like any model."""
import re

import numpy as np
import pytest

from core.config import load_config
from core.errors import PipelineError
from conftest import here


def add_to_config(workspace, text: str) -> None:
    with open(workspace / "pipeline.toml", "a") as config:
        config.write(text)


@pytest.mark.parametrize("options, message", [
    ('features = "tokens"\ntoken_head = "cnn"', "token_head must be one of 'pooling', 'gru', 'lstm', got 'cnn'"),
    ('token_head = "gru"', "has key(s) ['token_head'] that kind 'frozen' does not take"),
    ('features = "tokens"\ntoken_head = "gru"\nrnn_layers = 3', "rnn_layers must be one of 1, 2, got 3"),
    ('features = "tokens"\ntoken_head = "lstm"\nrnn_units = 0', "rnn_units must be at least 1, got 0"),
    ('features = "tokens"\ntoken_head = "lstm"\nrnn_units = true', "rnn_units must be a whole number, got True"),
])
def test_recurrent_head_options_that_do_not_fit_are_refused_naming_the_table(workspace, options, message):
    add_to_config(workspace, f'\n[models.tiny-rnn]\nhandle = "tiny"\noutput_dim = 4\n{options}\n')
    from models.catalogue import catalogue
    with pytest.raises(PipelineError, match=rf"\[models.tiny-rnn\] {re.escape(message)}"):
        catalogue(here().config)


@pytest.mark.parametrize("cell, layers", [("gru", 1), ("lstm", 2)])
def test_a_recurrent_head_ignores_what_lies_beyond_each_texts_length(cell, layers):
    from models.networks import recurrent_token_model
    from models.kinds.tokens import TokensOptions
    spec = TokensOptions(handle="x", token_head=cell, rnn_layers=layers, rnn_units=8, head=(4,))
    model = recurrent_token_model(spec, 3)
    rng = np.random.default_rng(0)
    states, lengths = rng.random((3, 5, 3)).astype(np.float16), np.array([2, 5, 0], np.int32)
    noisy = states.copy()
    noisy[0, 2:], noisy[2] = 9, -9                        # only padding changes
    first, second = (model([s, lengths], training=False).numpy() for s in (states, noisy))   # eager: no tracing
    np.testing.assert_allclose(first, second, atol=1e-6)


@pytest.mark.slow
def test_a_recurrent_head_trains_on_the_token_cache(ready):
    from core.data import load_competition
    from models.catalogue import spec_of
    from models.kinds.base import FoldData
    from models.kinds.tokens import Tokens
    add_to_config(ready, '\n[models.tiny-gru]\nhandle = "tiny"\noutput_dim = 4\nfeatures = "tokens"\n'
                         'token_head = "gru"\nrnn_units = 4\nepochs = 1\n')
    cfg = here().config
    train, test = load_competition(here())
    trainer = Tokens(spec_of(cfg, "tiny-gru"), here(), train, test)
    trainer.prepare()
    rows = np.arange(len(train.texts))
    fold = FoldData(0, rows[rows % 3 != 0], rows[rows % 3 == 0], ready / "fold0", "tiny-gru fold 0")
    fold.folder.mkdir()
    held, predicted, history = trainer.fit_predict(fold)      # one fold: models.train's loop is the pooling head's
    assert held.shape == (20,) and predicted.shape == (len(test.texts),) and np.isfinite(held).all()
    import tensorflow as tf
    saved = [name for name, _ in tf.train.list_variables(str(fold.folder / "weights"))]
    assert len(history["loss"]) == 1 and any("recurrent_kernel" in name for name in saved)   # a GRU, no pooling


def test_the_new_options_at_their_defaults_leave_older_models_stamps_as_they_were(ready):
    from core.data import load_competition
    from models.catalogue import spec_of
    from models.kinds.tokens import Tokens
    from models.train import stamp_for
    cfg = here().config
    stamp = stamp_for(Tokens(spec_of(cfg, "tiny-tokens"), here(), *load_competition(here())))
    assert not {"token_head", "rnn_units", "rnn_layers"} & set(stamp["spec"])
