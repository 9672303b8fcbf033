import re
import tomllib

import pytest

from core.config import load_config
from core.errors import PipelineError
from models.catalogue import catalogue, spec_of
from conftest import here


def test_a_model_starts_from_the_train_table_and_overrides_it(workspace):
    from models.catalogue import spec_of
    cfg = here().config
    assert spec_of(cfg, "tiny-frozen").options.epochs == 2          # from [train]
    assert spec_of(cfg, "tiny-tuned").options.module_lr == 0.01    # its own entry


def test_config_env_selects_the_file(workspace, monkeypatch, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text((workspace / "pipeline.toml").read_text().replace("k = 3", "k = 4"))
    monkeypatch.setenv("CONFIG", str(other))
    assert here().config.folds.k == 4


def test_a_key_the_models_kind_does_not_take_is_refused_naming_the_table_the_key_and_the_kinds_keys(workspace):
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('[models.tfidf-lr]\n', '[models.tfidf-lr]\nlearning_rate = 1\n'))
    with pytest.raises(PipelineError, match=re.escape("[models.tfidf-lr] has key(s) ['learning_rate'] that kind "
                                                      "'tfidf' does not take; its keys: ['C', 'max_features', 'seed']")):
        catalogue(here().config)


def test_a_routing_key_against_the_kind_is_refused(workspace):
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('module_lr = 0.01\n', 'module_lr = 0.01\nfeatures = "tokens"\n'))
    with pytest.raises(PipelineError, match=re.escape("[models.tiny-tuned] trainable = True does not fit kind = "
                                                      "'tokens'")):
        catalogue(here().config)


def test_seeds_must_be_a_whole_number_of_at_least_one(workspace):
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('output_dim = 4\ntrainable', 'output_dim = 4\nseeds = 0\ntrainable'))
    with pytest.raises(PipelineError, match=r"\[models.tiny-tuned\] seeds must be at least 1, got 0"):
        catalogue(here().config)


@pytest.mark.parametrize("table, key, value, message", [
    ("folds", "k", 1, "[folds] k must be at least 2, got 1"),
    ("folds", "k", "5", "[folds] k must be a whole number, got '5'"),
    ("folds", "seed", -1, "[folds] seed must be at least 0, got -1"),
    ("models.tiny-tuned", "epochs", 0, "[models.tiny-tuned] epochs must be at least 1, got 0"),
    ("models.tiny-tuned", "batch_size", 2.5, "[models.tiny-tuned] batch_size must be a whole number, got 2.5"),
    ("models.tiny-tuned", "lr", -0.1, "[models.tiny-tuned] lr must be above 0, got -0.1"),
    ("models.tiny-tuned", "module_lr", 0, "[models.tiny-tuned] module_lr must be above 0, got 0"),
    ("models.tiny-tuned", "dropout", 1.0, "[models.tiny-tuned] dropout must be below 1, got 1.0"),
    ("models.tiny-tuned", "head", [8, 0], "[models.tiny-tuned] head must be at least 1 (each of them), got (8, 0)"),
    ("models.tiny-tuned", "patience", True, "[models.tiny-tuned] patience must be a whole number, got True"),
    ("models.tfidf-lr", "C", 0, "[models.tfidf-lr] C must be above 0, got 0"),
    ("models.tiny-tuned", "enabled", "cpu", "[models.tiny-tuned] enabled must be one of True, False, 'gpu', 'always', got 'cpu'"),
    ("blends.mean", "method", "median", "[blends.mean] method must be one of 'mean', 'rank_mean', 'weighted'"),
    ("kaggle", "time_limit_minutes", 0, "[kaggle] time_limit_minutes must be above 0, got 0"),
    ("kaggle", "accelerator", "TPU", "[kaggle] accelerator must be one of 'T4', 'P100', 'H100', 'CPU', got 'TPU'"),
    ("workspace", "disk_budget_gb", "20", "[workspace] disk_budget_gb must be a number, got '20'"),
])
def test_a_value_of_the_wrong_type_or_out_of_range_is_refused_naming_the_table_and_key(workspace, table, key, value,
                                                                                       message):
    path = workspace / "pipeline.toml"
    edit(path, table, key, value)
    with pytest.raises(PipelineError) as refused:
        catalogue(here().config)
    assert message in str(refused.value) and str(path) in str(refused.value)


def edit(path, table: str, key: str, value) -> None:
    """Set `key` of the dotted `table` in the TOML file at `path`."""
    from pipeline.overrides import dumps, merge
    override = {key: value}
    for part in reversed(table.split(".")):
        override = {part: override}
    path.write_text(dumps(merge(tomllib.loads(path.read_text()), override)))


def test_a_blend_naming_an_unknown_model_is_refused_when_the_configuration_loads(workspace):
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('members = ["tfidf-lr", "tiny-frozen"]', 'members = ["tfidf-lr", "tiny-frozn"]'))
    with pytest.raises(PipelineError, match=r"\[blends.mean\] members names unknown model\(s\) \['tiny-frozn'\]"):
        here().config


def test_an_unknown_model_name_lists_the_known_ones(workspace):
    with pytest.raises(PipelineError, match="no model named 'nope'; known models: tfidf-lr"):
        here().config.model("nope")


def test_the_repository_config_has_the_online_catalogue():
    from core.paths import REPO
    cfg = load_config(REPO / "pipeline.toml")
    handles = {h for m in catalogue(cfg).values() for h in m.handles}
    assert "https://tfhub.dev/google/universal-sentence-encoder-multilingual/3" in handles
    assert "https://tfhub.dev/google/nnlm-en-dim128-with-normalization/2" in handles
    assert not cfg.default_blend                  # the blend sent is the best by nested score
    assert all(member in cfg.models for b in cfg.blends.values() for member in b.members)


def test_a_gpu_only_model_is_left_out_of_models_and_blends_without_a_gpu(workspace, monkeypatch):
    from core.run import Run
    from ensembles.blend import members_here
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('trainable = true\nmodule_lr = 0.01', 'trainable = true\nmodule_lr = 0.01\nenabled = "gpu"')
                    .replace('members = ["tfidf-lr", "tiny-frozen"]', 'members = ["tfidf-lr", "tiny-frozen", "tiny-tuned"]'))
    cfg = here().config
    assert "tiny-tuned" not in [m.name for m in cfg.enabled_models(gpu=False)]
    assert "tiny-tuned" in [m.name for m in cfg.enabled_models(gpu=True)]
    assert members_here(here().with_(devices="cpu"), cfg.blend("mean")).members == ("tfidf-lr", "tiny-frozen")
    monkeypatch.setattr(Run, "gpu", property(lambda run: True))
    assert members_here(here(), cfg.blend("mean")).members == ("tfidf-lr", "tiny-frozen", "tiny-tuned")


# ---- a configuration over a base file, and the competition's text columns
def over_base(workspace, text: str) -> None:
    """The workspace's configuration becomes base.toml; pipeline.toml names it as its base, then `text`."""
    (workspace / "pipeline.toml").rename(workspace / "base.toml")
    (workspace / "pipeline.toml").write_text('base = "base.toml"\n' + text)


def test_a_configuration_over_a_base_file_overrides_only_the_tables_it_names(workspace):
    over_base(workspace, '[competition]\nid = "id"\n\n[folds]\nk = 4\n\n[models.tfidf-lr]\nC = 8.0\n')
    cfg = here().config
    assert (cfg.competition.id, cfg.competition.text, cfg.folds.k, cfg.folds.seed) == ("id", "question_text", 4, 7)
    assert spec_of(cfg, "tfidf-lr").kind == "tfidf" and spec_of(cfg, "tfidf-lr").options.C == 8.0
    assert set(cfg.models) == {"tfidf-lr", "tiny-frozen", "tiny-tokens", "tiny-tuned"} and cfg.default_blend == "mean"


def test_a_missing_base_file_is_named_with_the_fix(workspace):
    (workspace / "pipeline.toml").write_text('base = "nope.toml"\n')
    with pytest.raises(PipelineError, match=r"pipeline.toml: base file .*nope.toml not found; fix base = 'nope.toml'"):
        here().config


def test_a_base_that_leads_back_to_the_file_is_refused(workspace):
    over_base(workspace, "")
    (workspace / "base.toml").write_text('base = "pipeline.toml"\n' + (workspace / "base.toml").read_text())
    with pytest.raises(PipelineError, match="cannot be its own base"):
        here().config


def test_the_disaster_tweets_file_takes_the_catalogue_from_pipeline_toml():
    from core.paths import REPO
    quora, tweets = load_config(REPO / "pipeline.toml"), load_config(REPO / "disaster-tweets.toml")
    assert tweets.models == quora.models and tweets.blends == quora.blends and tweets.modules == quora.modules
    c = tweets.competition
    assert (c.slug, c.id, c.text_columns, c.prediction, c.metric) == ("nlp-getting-started", "id",
                                                                       ("keyword", "text"), "target", "f1")
    assert tweets.kaggle.code_competition is False
    assert "models." not in (REPO / "disaster-tweets.toml").read_text()          # one catalogue: the base's


def test_text_may_name_several_columns(workspace):
    over_base(workspace, '[competition]\ntext = ["keyword", "text"]\n')
    assert here().config.competition.text_columns == ("keyword", "text")


def test_a_text_template_naming_a_column_outside_text_is_refused(workspace):
    over_base(workspace, '[competition]\ntext = ["keyword", "text"]\ntext_template = "{keyword} {place}: {text}"\n')
    with pytest.raises(PipelineError, match=r"\[competition\] text_template names \['place'\], not among the text "
                                            r"columns \['keyword', 'text'\]; add them to text"):
        here().config


def test_the_target_cannot_be_a_text_column(workspace):
    over_base(workspace, '[competition]\ntext = ["question_text", "target"]\n')
    with pytest.raises(PipelineError, match=r"\[competition\] text must not name the target column 'target'"):
        here().config
