"""Model kinds: a kind is one class and one registry entry; a table names its kind (or one rule picks it); options
are the kind's own; models trained before kinds keep their stamps."""
import json
import re
import types

import numpy as np
import pytest

from conftest import here, write_competition
from core.config import load_config
from core.errors import PipelineError
from core.paths import REPO
from folds import make_folds
from models import train
from models.catalogue import catalogue, route, spec_of, upgrade_stamp
from models.kinds import KINDS


def worked_example() -> types.ModuleType:
    """The kind docs/models.md shows, as a module: the code a newcomer copies."""
    text = (REPO / "docs" / "models.md").read_text()
    code = re.search(r"## Adding a model kind.*?```python\n(.*?)```", text, re.S).group(1)
    module = types.ModuleType("models.kinds.nb")
    exec(compile(code, "docs/models.md", "exec"), module.__dict__)
    return module


def add_table(workspace, table: str) -> None:
    with open(workspace / "pipeline.toml", "a") as config:
        config.write(table)


def test_a_new_kind_is_one_class_and_one_registry_entry(workspace, monkeypatch):
    monkeypatch.setitem(KINDS, "nb", worked_example().NaiveBayes)
    add_table(workspace, '\n[models.naive-bayes]\nkind = "nb"\nalpha = 0.5\n')
    write_competition(workspace)
    make_folds.main()
    train.main(["--model", "naive-bayes"])
    metrics = json.loads((workspace / "models" / "naive-bayes" / "metrics.json").read_text())
    assert metrics["path"] == "nb" and metrics["spec"]["alpha"] == 0.5 and metrics["score"]["oof"] > 0.5
    assert np.load(workspace / "models" / "naive-bayes" / "test.npy").shape == (20,)


def test_a_new_kinds_options_are_checked_like_every_other(workspace, monkeypatch):
    monkeypatch.setitem(KINDS, "nb", worked_example().NaiveBayes)
    add_table(workspace, '\n[models.naive-bayes]\nkind = "nb"\nalpha = 0\n')
    with pytest.raises(PipelineError, match=re.escape("[models.naive-bayes] alpha must be above 0, got 0")):
        catalogue(here().config)


def test_an_unknown_kind_is_refused_naming_the_known_ones(workspace):
    add_table(workspace, '\n[models.odd]\nkind = "svm"\n')
    with pytest.raises(PipelineError, match=r"\[models.odd\] kind 'svm' is not known; known kinds: tfidf, frozen"):
        spec_of(here().config, "odd")


@pytest.mark.parametrize("table, kind", [
    ({"handle": "tiny"}, "frozen"),
    ({"handle": ["tiny", "tiny"]}, "frozen"),
    ({"handle": "tiny", "features": "tokens"}, "tokens"),
    ({"handle": "tiny", "trainable": True, "trainable_layers": 2}, "partial"),
    ({"handle": "minilm", "trainable": True}, "full"),          # minilm's builder makes modules that take ids
    ({"handle": "tiny", "trainable": True}, "module"),          # a word-vector module takes no ids
    ({"handle": "https://tfhub.dev/x/1", "trainable": True}, "module"),
])
def test_a_table_without_a_kind_gets_the_one_its_keys_describe(workspace, table, kind):
    add_table(workspace, '\n[modules.minilm]\nbuilder = "minilm"\n')
    assert route(table, here().config) == kind


# Stamps written by the version before kinds (d755f7b), for SMALL_CONFIG's models: every option of every path in one
# flat spec. They must still mean "up to date".
BEFORE_KINDS = {
    "tfidf-lr": {"C": 4.0, "batch_size": 16, "clipnorm": 1.0, "dropout": 0.2, "epochs": 2, "features": "sentence",
                 "handle": "", "head": [8], "kind": "tfidf", "lr": 0.001, "max_features": 200000, "module_lr": 3e-05,
                 "name": "tfidf-lr", "output_dim": 0, "patience": 1, "seed": 42, "trainable": False},
    "tiny-frozen": {"C": 4.0, "batch_size": 16, "clipnorm": 1.0, "dropout": 0.2, "epochs": 2, "features": "sentence",
                    "handle": "tiny", "head": [8], "kind": "hub", "lr": 0.001, "max_features": 200000,
                    "module_lr": 3e-05, "name": "tiny-frozen", "output_dim": 4, "patience": 1, "seed": 42,
                    "trainable": False},
    "tiny-tokens": {"C": 4.0, "batch_size": 16, "clipnorm": 1.0, "dropout": 0.2, "epochs": 2, "features": "tokens",
                    "handle": "tiny", "head": [8], "kind": "hub", "lr": 0.001, "max_features": 200000,
                    "module_lr": 3e-05, "name": "tiny-tokens", "output_dim": 4, "patience": 1, "seed": 42,
                    "trainable": False},
    "tiny-tuned": {"C": 4.0, "batch_size": 16, "clipnorm": 1.0, "dropout": 0.2, "epochs": 2, "features": "sentence",
                   "handle": "tiny", "head": [8], "kind": "hub", "lr": 0.001, "max_features": 200000,
                   "module_lr": 0.01, "name": "tiny-tuned", "output_dim": 4, "patience": 1, "seed": 42,
                   "trainable": True},
    "tiny-gru": {"C": 4.0, "batch_size": 16, "clipnorm": 1.0, "dropout": 0.2, "epochs": 2, "features": "tokens",
                 "handle": "tiny", "head": [8], "kind": "hub", "lr": 0.001, "max_features": 200000,
                 "module_lr": 3e-05, "name": "tiny-gru", "output_dim": 4, "patience": 1, "rnn_units": 8, "seed": 42,
                 "token_head": "gru", "trainable": False},
}


@pytest.mark.parametrize("name", list(BEFORE_KINDS))
def test_a_stamp_from_before_kinds_reads_as_the_same_model(workspace, name):
    add_table(workspace, '\n[models.tiny-gru]\nhandle = "tiny"\noutput_dim = 4\nfeatures = "tokens"\n'
                         'token_head = "gru"\nrnn_units = 8\n')
    cfg = here().config
    assert upgrade_stamp({"spec": BEFORE_KINDS[name], "test_texts": "x"}, cfg)["spec"] == spec_of(cfg, name).stamp()


def test_a_model_trained_before_kinds_is_up_to_date_and_not_retrained(workspace, capsys):
    from core.data import load_test, texts_fingerprint
    write_competition(workspace)
    make_folds.main()
    train.main(["--model", "tfidf-lr"])
    out = workspace / "models" / "tfidf-lr"
    stamp = json.loads((out / "stamp.json").read_text())       # as the version before kinds wrote it:
    (out / "stamp.json").write_text(json.dumps({**stamp, "spec": BEFORE_KINDS["tfidf-lr"],
                                                "test_texts": texts_fingerprint(load_test(here()).texts)}))
    for done in out.glob("fold*/done.json"):                   # its folds did not record their test set
        done.write_text(json.dumps({k: v for k, v in json.loads(done.read_text()).items()
                                    if k != "test_fingerprint"}))
    capsys.readouterr()
    train.main(["--model", "tfidf-lr"])
    said = capsys.readouterr().out
    assert "up to date" in said and "fold" not in said.replace(str(workspace), "")
