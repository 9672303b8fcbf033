import os
import subprocess

from conftest import write_competition
from core.paths import REPO


def make(*args, env=None):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=env, capture_output=True, text=True)


def test_make_help_lists_the_pipeline_targets():
    out = make("help").stdout
    for target in ("setup", "demo", "folds", "train", "ensemble", "submit", "leaderboard", "bench", "test"):
        assert f"{target} " in out


def test_make_folds_is_a_file_target_that_skips_finished_work(workspace):
    write_competition(workspace)
    env = dict(os.environ)
    first = make("folds", env=env)
    assert first.returncode == 0, first.stderr
    assert (workspace / "folds" / "folds.csv").exists()
    assert "Nothing to be done for 'folds'" in make("folds", env=env).stdout


def test_make_folds_without_a_competition_says_how_to_get_one(workspace):
    result = make("folds", env=dict(os.environ))
    assert result.returncode != 0 and "make demo" in result.stderr


def test_make_train_with_models_trains_only_those(workspace):
    write_competition(workspace)
    other = workspace / "models" / "tiny-frozen" / "fold0" / "history.json"
    other.parent.mkdir(parents=True)
    other.write_text("{}")
    result = make("train", "MODELS=tfidf-lr", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert (workspace / "models" / "tfidf-lr" / "metrics.json").exists()
    assert sorted(p.name for p in (workspace / "models").iterdir() if p.is_dir()) == ["tfidf-lr", "tiny-frozen"]
    assert other.read_text() == "{}"


def test_make_train_with_models_builds_only_the_modules_they_load(workspace):
    write_competition(workspace)
    result = make("train", "MODELS=tfidf-lr", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "no local hub module to build" in result.stdout and not (workspace / "models" / "hub").exists()


def test_make_train_refuses_an_unknown_model_naming_the_known_ones(workspace):
    write_competition(workspace)
    result = make("train", "MODELS=tfidf-lr,tfidf-xx", env=dict(os.environ))
    assert result.returncode == 2
    assert "no model named 'tfidf-xx'; known models: tfidf-lr, tiny-frozen, tiny-tokens, tiny-tuned" in result.stderr
    assert "Traceback" not in result.stderr and not (workspace / "models").exists()


def test_make_reruns_folds_when_the_configurations_base_file_changes(workspace):
    write_competition(workspace)
    (workspace / "pipeline.toml").rename(workspace / "base.toml")
    (workspace / "pipeline.toml").write_text('base = "base.toml"\n')
    env = dict(os.environ)
    assert make("folds", env=env).returncode == 0
    later = (workspace / "folds" / "folds.csv").stat().st_mtime + 10
    os.utime(workspace / "base.toml", (later, later))
    again = make("folds", env=env)
    assert "Nothing to be done" not in again.stdout and "folds: up to date" in again.stdout
