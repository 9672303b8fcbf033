import pytest

from core.config import load_config
from core.errors import PipelineError


def test_a_model_starts_from_the_train_table_and_overrides_it(workspace):
    cfg = load_config()
    assert cfg.model("tiny-frozen").epochs == 2          # from [train]
    assert cfg.model("tiny-tuned").module_lr == 0.01    # its own entry


def test_config_env_selects_the_file(workspace, monkeypatch, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text((workspace / "pipeline.toml").read_text().replace("k = 3", "k = 4"))
    monkeypatch.setenv("CONFIG", str(other))
    assert load_config().folds.k == 4


def test_an_unknown_key_names_the_table_and_key(workspace):
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('[models.tfidf-lr]\n', '[models.tfidf-lr]\nlearning_rate = 1\n'))
    with pytest.raises(PipelineError, match=r"\[models.tfidf-lr\] has unknown key\(s\) \['learning_rate'\]"):
        load_config()


def test_token_features_need_one_frozen_module(workspace):
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('module_lr = 0.01\n', 'module_lr = 0.01\nfeatures = "tokens"\n'))
    with pytest.raises(PipelineError, match=r'\[models.tiny-tuned\] features = "tokens" takes one frozen module'):
        load_config()


def test_seeds_must_be_a_whole_number_of_at_least_one(workspace):
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('output_dim = 4\ntrainable', 'output_dim = 4\nseeds = 0\ntrainable'))
    with pytest.raises(PipelineError, match=r"\[models.tiny-tuned\] seeds must be a whole number >= 1"):
        load_config()


def test_an_unknown_model_name_lists_the_known_ones(workspace):
    with pytest.raises(PipelineError, match="no model named 'nope'; known models: tfidf-lr"):
        load_config().model("nope")


def test_the_repository_config_has_the_online_catalogue():
    from core.paths import REPO
    cfg = load_config(REPO / "pipeline.toml")
    handles = {m.handle for m in cfg.models.values()}
    assert "https://tfhub.dev/google/universal-sentence-encoder-multilingual/3" in handles
    assert "https://tfhub.dev/google/nnlm-en-dim128-with-normalization/2" in handles
    assert cfg.default_blend in cfg.blends
    assert all(member in cfg.models for b in cfg.blends.values() for member in b.members)


def test_a_gpu_only_model_is_left_out_of_models_and_blends_without_a_gpu(workspace, monkeypatch):
    from core import config
    path = workspace / "pipeline.toml"
    path.write_text(path.read_text().replace('trainable = true\nmodule_lr = 0.01', 'trainable = true\nmodule_lr = 0.01\nenabled = "gpu"')
                    .replace('members = ["tfidf-lr", "tiny-frozen"]', 'members = ["tfidf-lr", "tiny-frozen", "tiny-tuned"]'))
    monkeypatch.setattr(config, "gpu_present", lambda: False)
    cfg = load_config()
    assert "tiny-tuned" not in [m.name for m in cfg.enabled_models()]
    assert cfg.blend("mean").members == ("tfidf-lr", "tiny-frozen")
    monkeypatch.setattr(config, "gpu_present", lambda: True)
    assert load_config().blend("mean").members == ("tfidf-lr", "tiny-frozen", "tiny-tuned")


# ---- a configuration over a base file, and the competition's text columns
def over_base(workspace, text: str) -> None:
    """The workspace's configuration becomes base.toml; pipeline.toml names it as its base, then `text`."""
    (workspace / "pipeline.toml").rename(workspace / "base.toml")
    (workspace / "pipeline.toml").write_text('base = "base.toml"\n' + text)


def test_a_configuration_over_a_base_file_overrides_only_the_tables_it_names(workspace):
    over_base(workspace, '[competition]\nid = "id"\n\n[folds]\nk = 4\n\n[models.tfidf-lr]\nC = 8.0\n')
    cfg = load_config()
    assert (cfg.competition.id, cfg.competition.text, cfg.folds.k, cfg.folds.seed) == ("id", "question_text", 4, 7)
    assert cfg.model("tfidf-lr").kind == "tfidf" and cfg.model("tfidf-lr").C == 8.0
    assert set(cfg.models) == {"tfidf-lr", "tiny-frozen", "tiny-tokens", "tiny-tuned"} and cfg.default_blend == "mean"


def test_a_missing_base_file_is_named_with_the_fix(workspace):
    (workspace / "pipeline.toml").write_text('base = "nope.toml"\n')
    with pytest.raises(PipelineError, match=r"pipeline.toml: base file .*nope.toml not found; fix base = 'nope.toml'"):
        load_config()


def test_a_base_that_leads_back_to_the_file_is_refused(workspace):
    over_base(workspace, "")
    (workspace / "base.toml").write_text('base = "pipeline.toml"\n' + (workspace / "base.toml").read_text())
    with pytest.raises(PipelineError, match="cannot be its own base"):
        load_config()


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
    assert load_config().competition.text_columns == ("keyword", "text")


def test_a_text_template_naming_a_column_outside_text_is_refused(workspace):
    over_base(workspace, '[competition]\ntext = ["keyword", "text"]\ntext_template = "{keyword} {place}: {text}"\n')
    with pytest.raises(PipelineError, match=r"\[competition\] text_template names \['place'\], not among the text "
                                            r"columns \['keyword', 'text'\]; add them to text"):
        load_config()


def test_the_target_cannot_be_a_text_column(workspace):
    over_base(workspace, '[competition]\ntext = ["question_text", "target"]\n')
    with pytest.raises(PipelineError, match=r"\[competition\] text must not name the target column 'target'"):
        load_config()
