import os
import shutil
import subprocess

import pytest

from conftest import SMALL_CONFIG, select_workspace, write_competition
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
    again = make("folds", env=env)
    assert again.returncode == 0 and "folds.make_folds" not in again.stdout


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


def ran(result) -> list[str]:
    """The stages a make run started, in order (make prints each recipe line)."""
    return [line.split(" -m ")[1].split()[0] for line in result.stdout.splitlines() if " -m " in line
            and not line.split(" -m ")[1].startswith(("models.modules.build", "models.devices", "core.show"))]


@pytest.fixture(scope="module")
def built_once(tmp_path_factory):
    """A competition trained, blended and submitted through make with TF-IDF alone, once for this file."""
    root = tmp_path_factory.mktemp("built")
    (root / "pipeline.toml").write_text(
        SMALL_CONFIG.replace('members = ["tfidf-lr", "tiny-frozen"]', 'members = ["tfidf-lr"]')
        .replace("[models.tiny-", "[models.off-").replace('output_dim = 4\n', 'output_dim = 4\nenabled = false\n'))
    write_competition(root)
    first = make("folds", "train", "ensemble", "submit", env=environment(root))
    assert first.returncode == 0, first.stderr
    return root


@pytest.fixture
def built(built_once, tmp_path, monkeypatch):
    """A copy of it to change (timestamps kept, as make reads them)."""
    root = tmp_path / "ws"
    shutil.copytree(built_once, root)
    return select_workspace(root, monkeypatch)


def environment(root) -> dict:
    return {**os.environ, "PIPELINE_ROOT": str(root), "CONFIG": str(root / "pipeline.toml"), "FORCE": ""}


def test_make_rebuilds_nothing_when_the_competitions_files_are_only_touched(built):
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        (built / "input" / name).touch()
    again = make("folds", "train", "ensemble", "submit", env=dict(os.environ))
    assert again.returncode == 0 and ran(again) == []


def test_a_changed_sample_submission_writes_the_submission_again_and_nothing_else(built):
    sample = built / "input" / "sample_submission.csv"
    sample.write_text(sample.read_text().replace(",0\n", ",1\n"))
    again = make("submit", env=dict(os.environ))
    assert again.returncode == 0 and ran(again) == ["submit.make_submission"]


def test_a_changed_train_set_checks_the_folds_first(built):
    train = built / "input" / "train.csv"
    train.write_text(train.read_text().replace("today?", "today??", 1))
    again = make("folds", env=dict(os.environ))
    assert ran(again) == ["folds.make_folds"]


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


def test_a_replaced_test_set_is_predicted_blended_and_submitted_by_make_submit_without_training(built):
    import pandas as pd
    test = pd.read_csv(built / "input" / "test.csv").iloc[3:]
    test.assign(question_text=test["question_text"] + " now").to_csv(built / "input" / "test.csv", index=False)
    test[["qid"]].assign(prediction=0).to_csv(built / "input" / "sample_submission.csv", index=False)
    again = make("submit", env=dict(os.environ))
    assert again.returncode == 0, again.stderr
    assert ran(again) == ["models.train", "ensembles.blend", "submit.make_submission"]
    assert "its saved models of folds [0, 1, 2] predict it" in again.stdout and "own best threshold" not in again.stdout
    submitted = pd.read_csv(built / "submit" / "mean.csv", dtype=str)
    assert submitted["qid"].tolist() == test["qid"].tolist()
