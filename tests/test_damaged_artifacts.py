"""Damaged artifacts (a disk filled, a copy interrupted, a file edited by hand) are never used: where they are
read they are refused in one line naming the file and what to run, and the stage that made them makes them again."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import here, write_competition
from core.errors import PipelineError
from core.paths import REPO
from ensembles.blend import run_blend
from folds import make_folds
from models import train


@pytest.fixture
def trained(workspace):
    """tfidf-lr trained and blended alone (seconds: no TensorFlow)."""
    with open(workspace / "pipeline.toml", "a") as f:
        f.write('\n[blends.alone]\nmethod = "mean"\nmembers = ["tfidf-lr"]\n')
    write_competition(workspace)
    make_folds.main()
    train.main(["--model", "tfidf-lr"])
    run_blend(here(), "alone")
    return workspace


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def stage(*args):
    """A stage run as make runs it: its exit code and what it printed on stderr."""
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)
    return done.returncode, done.stderr


def test_a_truncated_oof_file_is_refused_by_the_blend_naming_it_and_the_fix(trained):
    cut_in_half(trained / "models" / "tfidf-lr" / "oof.npy")
    code, err = stage("ensembles.blend", "--blend", "alone")
    assert code == 2 and "Traceback" not in err
    assert f"{trained / 'models' / 'tfidf-lr' / 'oof.npy'}: unreadable or cut short" in err
    assert "make train MODELS=tfidf-lr" in err


def test_training_again_assembles_a_damaged_model_from_its_folds(trained, capsys):
    before = np.load(trained / "models" / "tfidf-lr" / "oof.npy")
    cut_in_half(trained / "models" / "tfidf-lr" / "oof.npy")
    train.main(["--model", "tfidf-lr"])
    assert "assembling it again from its folds" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(trained / "models" / "tfidf-lr" / "oof.npy"), before)


def test_an_unreadable_metrics_file_is_refused_naming_it(trained):
    (trained / "models" / "tfidf-lr" / "metrics.json").write_text('{"schema": 2, "thre')
    code, err = stage("submit.make_submission", "--model", "tfidf-lr")
    assert code == 2 and "Traceback" not in err
    assert "metrics.json: unreadable or not JSON" in err and "make train MODELS=tfidf-lr" in err


def test_scores_that_are_not_probabilities_are_refused_naming_the_row(trained):
    path = trained / "models" / "tfidf-lr" / "test.npy"
    scores = np.load(path)
    scores[3] = np.nan
    np.save(path, scores)
    code, err = stage("submit.make_submission", "--model", "tfidf-lr")
    assert code == 2 and "Traceback" not in err
    assert "1 score(s) that are NaN, infinite or outside [0, 1], first at row 4" in err


def test_a_damaged_fold_file_is_refused_naming_the_fold_to_retrain(trained):
    cut_in_half(trained / "models" / "tfidf-lr" / "fold1" / "test.npy")
    (trained / "models" / "tfidf-lr" / "oof.npy").unlink()
    code, err = stage("models.train", "--model", "tfidf-lr")
    assert code == 2 and "Traceback" not in err
    assert f"fold1/test.npy: unreadable or cut short" in err
    assert f"rm -r {trained / 'models' / 'tfidf-lr' / 'fold1'} && make train MODELS=tfidf-lr" in err


def test_an_unreadable_stamp_is_refused_unless_force(trained, monkeypatch):
    (trained / "models" / "tfidf-lr" / "stamp.json").write_bytes(b"\x00\x01garbage")
    with pytest.raises(PipelineError, match="stamp.json: unreadable or not JSON.*FORCE=1"):
        train.train_models(here(), ["tfidf-lr"])
    monkeypatch.setenv("FORCE", "1")
    train.train_models(here(), ["tfidf-lr"])
    assert json.loads((trained / "models" / "tfidf-lr" / "stamp.json").read_text())["spec"]["kind"] == "tfidf"


def test_a_damaged_blend_is_fitted_again(trained, capsys):
    before = np.load(trained / "ensembles" / "alone" / "test.npy")
    cut_in_half(trained / "ensembles" / "alone" / "test.npy")
    run_blend(here(), "alone")
    assert "fitting it again" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(trained / "ensembles" / "alone" / "test.npy"), before)


def test_a_damaged_bfloat16_check_is_measured_again(tmp_path, monkeypatch):
    from models import devices
    monkeypatch.setenv("PIPELINE_MACHINE_CACHE", str(tmp_path))
    monkeypatch.setattr(devices, "measure_bf16_speedup", lambda: 2.5)
    (tmp_path / "bf16-check.json").write_text("{not json")
    assert devices.bf16_speedup("a CPU", frozenset({"amx_bf16"}), tmp_path) == 2.5
