"""A replaced test set (Kaggle's stage 2): nothing made for the old one is written or shown as if it were the new
one's; every artifact records the test set it predicts."""
import json

import pandas as pd
import pytest

from core.errors import PipelineError
from submit_fakes import N_TEST, full_world


def replace_test_set(root, rows: int = N_TEST - 5):
    """Another test set in the same files: fewer rows, other texts (sample_submission follows it)."""
    test = pd.read_csv(root / "input" / "test.csv").iloc[:rows]
    test.assign(question_text=test["question_text"] + " (stage 2)").to_csv(root / "input" / "test.csv", index=False)
    test[["qid"]].assign(prediction=0).to_csv(root / "input" / "sample_submission.csv", index=False)


def test_a_submission_of_predictions_for_another_test_set_is_refused_naming_the_file_and_the_fix(tmp_path,
                                                                                                 monkeypatch):
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    replace_test_set(tmp_path)
    with pytest.raises(PipelineError) as refused:
        make("blend", "mean")
    assert f"{tmp_path / 'ensembles' / 'mean' / 'test.npy'}: predicts another test set" in str(refused.value)
    assert "make ensemble" in str(refused.value) and not (tmp_path / "submit" / "mean.csv").exists()


def test_the_manifest_records_the_test_set_the_submission_predicts(tmp_path, monkeypatch):
    from core.data import load_test, texts_fingerprint
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    manifest = json.loads(make("blend", "mean").with_suffix(".json").read_text())
    assert manifest["test_fingerprint"] == texts_fingerprint(load_test().texts)


def test_the_leaderboard_shows_no_local_score_of_predictions_for_another_test_set(tmp_path, monkeypatch):
    from submit.leaderboard import build
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    make("blend", "mean")
    replace_test_set(tmp_path)
    (tmp_path / "input" / "solution.csv").write_text(
        "qid,target\n" + "".join(f"q{i:04d},{i % 2}\n" for i in range(N_TEST - 5)))
    board = build()
    rows = {row.name: row for row in board.rows + board.files}
    assert rows["mean"].local is None and "predicts another test set" in rows["mean"].note
    assert rows["mean.csv"].local is None and "made for another test set" in rows["mean.csv"].note


def test_a_blend_refuses_members_that_predict_another_test_set(tmp_path, monkeypatch):
    from ensembles.blend import run_blend
    full_world(tmp_path, monkeypatch)
    replace_test_set(tmp_path)
    with pytest.raises(PipelineError, match=r"models/alpha/test.npy: predicts another test set.*"
                                            r"`make train MODELS=alpha` predicts it"):
        run_blend("mean")
