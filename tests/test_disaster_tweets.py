"""A second competition shipped as configuration: disaster-tweets.toml (Kaggle's nlp-getting-started) over
pipeline.toml. Its columns (numeric ids, text from keyword + text, an extra location column, the submission's
label named like the target) run through every stage, its download and its kernel; nothing reaches Kaggle."""
import base64
import io
import re
import zipfile

import pandas as pd
import pytest

from conftest import here, small_config, write_vectors
from core.errors import PipelineError
from core.paths import REPO
from core.tables import dumps, read_tables
from submit_fakes import CONFIG as KERNEL_CONFIG
from submit_fakes import setup_env

TWEETS = REPO / "disaster-tweets.toml"


def over(root, base: str) -> None:
    """root/pipeline.toml: the shipped file's [competition] and [kaggle] tables over `base` (root/base.toml)."""
    shipped = read_tables(TWEETS)
    (root / "base.toml").write_text(base)
    (root / "pipeline.toml").write_text('base = "base.toml"\n' + dumps({t: shipped[t] for t in ("competition",
                                                                                                "kaggle")}))


def test_the_whole_pipeline_runs_on_a_tiny_synthetic_competition_in_its_format(workspace):
    import pipeline
    from input.demo import write_demo
    over(workspace, small_config(k=2))
    write_vectors(workspace / "vectors.txt")
    run = pipeline.load()
    assert write_demo(run.settings, train_rows=160, test_rows=40)
    run.folds()
    run.train(["tfidf-lr", "tiny-frozen"])          # TF-IDF and a tiny word-vector model
    run.blend(["mean"])
    path = run.submit("mean")
    board = run.leaderboard()
    report = run.report().read_text()
    submission = pd.read_csv(path, dtype=str)
    test = pd.read_csv(workspace / "input" / "test.csv", dtype=str, keep_default_na=False)
    assert list(submission.columns) == ["id", "target"] and submission["id"].tolist() == test["id"].tolist()
    assert submission["id"].str.isdigit().all() and set(submission["target"]) <= {"0", "1"}
    assert {"tfidf-lr", "tiny-frozen", "mean"} <= set(board["name"]) and board["oof"].notna().all()
    assert "nlp-getting-started" in report
    words = re.sub(r"base64,[A-Za-z0-9+/=]+", "", report) + (workspace / "submit" / "leaderboard.md").read_text()
    assert not re.search("quora|qid|question", words, re.I)       # the configured competition's, not Quora's


def test_a_model_trained_on_other_texts_is_refused_not_mixed(workspace):
    import pipeline
    from input.demo import write_demo
    over(workspace, small_config(k=2))
    run = pipeline.load()
    write_demo(run.settings, train_rows=100, test_rows=20)
    run.folds()
    run.train(["tfidf-lr"])
    text = (workspace / "pipeline.toml").read_text()
    (workspace / "pipeline.toml").write_text(text.replace("[competition]\n", '[competition]\ntext_template = '
                                                          '"{keyword}: {text}"\n'))
    with pytest.raises(PipelineError, match="made from a different train_texts"):
        pipeline.load().train(["tfidf-lr"])


def test_make_data_downloads_the_configured_competition(tmp_path, monkeypatch):
    from core import kaggle
    from input.download import download
    setup_env(tmp_path, monkeypatch)
    monkeypatch.setenv("CONFIG", str(TWEETS))
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "fake-secret-key-0123456789")
    seen = []

    def fake_kaggle(argv):                          # what the CLI leaves behind: the competition's zip
        seen.append(argv)
        with zipfile.ZipFile(tmp_path / "input" / "nlp-getting-started.zip", "w") as z:
            z.writestr("train.csv", "id,keyword,location,text,target\n1,,,Forest fire near La Ronge,1\n")
            z.writestr("test.csv", "id,keyword,location,text\n0,,,Just happened a terrible car crash\n")
            z.writestr("sample_submission.csv", "id,target\n0,0\n")
        return 0, "Downloading nlp-getting-started.zip\n"
    monkeypatch.setattr(kaggle, "_execute", fake_kaggle)
    folder = download(here())
    assert seen[0][1:] == ["competitions", "download", "-c", "nlp-getting-started", "-p", str(tmp_path / "input")]
    assert {"train.csv", "test.csv", "sample_submission.csv"} <= {p.name for p in folder.iterdir()}


def test_the_kernel_carries_the_configuration_merged_over_its_base(tmp_path, monkeypatch):
    from core.config import load_config
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "fake-secret-key-0123456789")
    over(tmp_path, KERNEL_CONFIG)
    script = (write(here()) / "kernel.py").read_text()
    assert '"slug": "nlp-getting-started"' in script
    code = re.search(r'^CODE = "([A-Za-z0-9+/=]*)"', script, re.M).group(1)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(code))) as z:
        (tmp_path / "bundled.toml").write_text(z.read("pipeline.toml").decode())
    cfg = load_config(tmp_path / "bundled.toml")
    assert (cfg.competition.id, cfg.competition.text_columns) == ("id", ("keyword", "text"))
    assert set(cfg.models) == {"alpha", "beta"} and cfg.default_blend == "mean"
