"""make modules: each builder's options checked as a table, one claim per module folder, the token-function protocol."""
import re

import numpy as np
import pytest

from conftest import here, write_vectors
from core.artifacts import read_json
from core.config import load_config
from core.errors import PipelineError
from models.modules.build import build_module, module_options


def edit_config(workspace, old: str, new: str) -> None:
    path = workspace / "pipeline.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def build_tiny():
    """Build (or not) the small config's word-vector module [modules.tiny]: models/hub/tiny."""
    cfg = here().config
    return build_module(here(), cfg.modules["tiny"])


@pytest.fixture
def vectors(workspace):
    write_vectors(workspace / "vectors.txt")
    return workspace / "vectors.txt"


@pytest.mark.parametrize("builder, table, known", [
    ("word-vectors", 'vectors = "v.txt"\nvocab_size = 3', "['combine', 'lowercase', 'oov_buckets', 'vectors', 'vocab_limit', 'weights']"),
    ("pypi-glove", "vocab_size = 3", "['lowercase', 'oov_buckets', 'vocab_limit']"),
    ("use-m3", "finetune = true", "['finetune_embeddings']"),
    ("minilm", "max_len = 64", "['max_length', 'package', 'wheel']"),
])
def test_an_option_of_the_wrong_name_is_refused_naming_the_table_and_the_known_ones(workspace, builder, table, known):
    edit_config(workspace, "[models.tfidf-lr]", f'[modules.other]\nbuilder = "{builder}"\n{table}\n\n[models.tfidf-lr]')
    cfg = here().config
    refusal = rf"\[modules.other\] has unknown key\(s\) .*; known keys: {re.escape(known)}"
    with pytest.raises(PipelineError, match=refusal):
        module_options(cfg.modules["other"], cfg.path)


def test_a_word_vector_module_without_vectors_is_refused_naming_the_key(workspace):
    edit_config(workspace, 'vectors = "vectors.txt"\n', "")
    with pytest.raises(PipelineError, match=r"pipeline.toml: \[modules.tiny\] is missing key\(s\) \['vectors'\]"):
        build_tiny()


@pytest.mark.parametrize("options, message", [
    ('vectors = "vectors.txt"\noov_buckets = "4"', "oov_buckets must be a whole number, got '4'"),
    ('vectors = "vectors.txt"\noov_buckets = true', "oov_buckets must be a whole number, got True"),
    ('vectors = "vectors.txt"\nvocab_limit = 2.5', "vocab_limit must be a whole number, got 2.5"),
    ('vectors = "vectors.txt"\nlowercase = 1', "lowercase must be true or false, got 1"),
    ("vectors = 3", "vectors must be a string or a list of strings, got 3"),
    ('vectors = ["vectors.txt", 3]', "vectors must be a string or a list of strings, got ('vectors.txt', 3)"),
    ('vectors = ["vectors.txt", "v.txt"]\nweights = [0.5, "x"]', "weights must be a list of numbers, got (0.5, 'x')"),
])
def test_an_option_of_the_wrong_type_is_refused_naming_the_table(workspace, vectors, options, message):
    edit_config(workspace, 'vectors = "vectors.txt"\noov_buckets = 4', options)
    with pytest.raises(PipelineError, match=rf"pipeline.toml: \[modules.tiny\] {re.escape(message)}"):
        build_tiny()


@pytest.mark.parametrize("options, message", [
    ('vectors = ["vectors.txt", "v.txt"]\ncombine = "sum"', 'combine must be "concat" or "mean"'),
    ('vectors = ["vectors.txt", "v.txt"]\nweights = [0.7, 0.3]', 'weights need combine = "mean"'),
    ('vectors = ["vectors.txt", "v.txt"]\ncombine = "mean"\nweights = [1]',
     "weights must give one number per vectors file (2), not 1"),
    ("vectors = []", "vectors must name at least one file"),
])
def test_combined_vector_options_that_do_not_fit_together_are_refused_naming_the_table(workspace, options, message):
    edit_config(workspace, 'vectors = "vectors.txt"\noov_buckets = 4', options)
    with pytest.raises(PipelineError, match=rf"pipeline.toml: \[modules.tiny\] {re.escape(message)}"):
        build_tiny()


def test_a_built_module_records_its_builder_and_options(workspace, vectors):
    dest = build_tiny()
    assert read_json(dest / "stamp.json") == {"builder": "word-vectors", "options": {
        "vectors": "vectors.txt", "vocab_limit": None, "lowercase": False, "oov_buckets": 4}}
    assert (dest / "saved_model.pb").exists()


def test_an_unchanged_module_is_up_to_date(workspace, vectors, capsys):
    dest = build_tiny()
    weights = (dest / "variables" / "variables.index").stat().st_mtime_ns
    capsys.readouterr()
    build_tiny()
    assert capsys.readouterr().out == f"{dest}: up to date\n"
    assert (dest / "variables" / "variables.index").stat().st_mtime_ns == weights


def test_a_module_rebuilt_with_changed_options_is_refused_unless_force(workspace, vectors, monkeypatch):
    dest = build_tiny()
    edit_config(workspace, "oov_buckets = 4", "oov_buckets = 5")
    refusal = r"made from a different options.*rm -rf models/hub/tiny && make modules.*FORCE=1"
    with pytest.raises(PipelineError, match=refusal):
        build_tiny()
    assert read_json(dest / "stamp.json")["options"]["oov_buckets"] == 4
    monkeypatch.setenv("FORCE", "1")
    build_tiny()
    assert read_json(dest / "stamp.json")["options"]["oov_buckets"] == 5 and (dest / "saved_model.pb").exists()


def test_a_module_rebuilt_with_force_keeps_the_previous_build_in_previous(workspace, vectors, monkeypatch):
    dest = build_tiny()
    edit_config(workspace, "oov_buckets = 4", "oov_buckets = 5")
    monkeypatch.setenv("FORCE", "1")
    build_tiny()
    assert read_json(dest / "previous" / "stamp.json")["options"]["oov_buckets"] == 4
    assert (dest / "previous" / "saved_model.pb").exists() and (dest / "saved_model.pb").exists()


def test_a_module_built_before_stamps_is_adopted_as_it_is(workspace, vectors, capsys):
    dest = build_tiny()
    (dest / "stamp.json").unlink()
    weights = (dest / "variables" / "variables.index").stat().st_mtime_ns
    capsys.readouterr()
    build_tiny()
    assert "built before modules were stamped" in capsys.readouterr().out
    assert read_json(dest / "stamp.json")["builder"] == "word-vectors"
    assert (dest / "variables" / "variables.index").stat().st_mtime_ns == weights


def test_a_word_vector_module_whose_file_is_absent_is_skipped(workspace, capsys):
    dest = build_tiny()
    assert f"{dest}: skipped ({workspace / 'vectors.txt'} not present)" in capsys.readouterr().out
    assert not dest.exists()


@pytest.fixture(scope="module")
def pre_protocol_module(tmp_path_factory):
    """A SavedModel of the reusable API only (`__call__`, variables): no tokenize, no token_embeddings."""
    import tensorflow as tf
    obj = tf.train.Checkpoint()
    scale = tf.Variable([1.0, 2.0])
    obj.variables = obj.trainable_variables = [scale]
    obj.regularization_losses = []
    obj.__call__ = tf.function(lambda texts: tf.ones([tf.shape(texts)[0], 2]) * scale,
                               input_signature=[tf.TensorSpec([None], tf.string)])
    path = tmp_path_factory.mktemp("old") / "module"
    tf.saved_model.save(obj, str(path))
    return path


def test_a_module_without_token_functions_gets_the_rebuild_message_from_the_token_cache(workspace,
                                                                                        pre_protocol_module):
    from models.caches import cached_token_embeddings
    rebuild = re.escape(f"rebuild it: rm -rf {pre_protocol_module} && make modules")
    with pytest.raises(PipelineError, match=rf"no token_embeddings/tokenize functions.*{rebuild}"):
        cached_token_embeddings(here(), str(pre_protocol_module), np.array(["why", "how"], dtype=object), "texts")


def test_token_lengths_count_characters_for_a_module_without_a_tokenizer(pre_protocol_module):
    import tensorflow as tf
    from models.batches import token_lengths
    module = tf.saved_model.load(str(pre_protocol_module))
    assert token_lengths(module, np.array(["why", "", "how so"], dtype=object)).tolist() == [3, 0, 6]
