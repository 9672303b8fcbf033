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
