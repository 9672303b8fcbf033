"""A replaced test set (Kaggle's stage 2): nothing made for the old one is written or shown as if it were the new
one's; every artifact records the test set it predicts."""
import json

import numpy as np
import pandas as pd
import pytest

from core.errors import PipelineError
from submit_fakes import N_TEST, full_world
from conftest import here


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
        make(here(), "blend", "mean")
    assert f"{tmp_path / 'ensembles' / 'mean' / 'test.npy'}: predicts another test set" in str(refused.value)
    assert "make ensemble" in str(refused.value) and not (tmp_path / "submit" / "mean.csv").exists()


def test_the_manifest_records_the_test_set_the_submission_predicts(tmp_path, monkeypatch):
    from core.data import load_test, texts_fingerprint
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    manifest = json.loads(make(here(), "blend", "mean").with_suffix(".json").read_text())
    assert manifest["test_fingerprint"] == texts_fingerprint(load_test(here()).texts)


def test_the_leaderboard_shows_no_local_score_of_predictions_for_another_test_set(tmp_path, monkeypatch):
    from submit.leaderboard import build
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    make(here(), "blend", "mean")
    replace_test_set(tmp_path)
    (tmp_path / "input" / "solution.csv").write_text(
        "qid,target\n" + "".join(f"q{i:04d},{i % 2}\n" for i in range(N_TEST - 5)))
    board = build(here())
    rows = {row.name: row for row in board.rows + board.files}
    assert rows["mean"].local is None and "predicts another test set" in rows["mean"].note
    assert rows["mean.csv"].local is None and "made for another test set" in rows["mean.csv"].note


def test_a_blend_refuses_members_that_predict_another_test_set(tmp_path, monkeypatch):
    from ensembles.blend import run_blend
    full_world(tmp_path, monkeypatch)
    replace_test_set(tmp_path)
    with pytest.raises(PipelineError, match=r"models/alpha/test.npy: predicts another test set.*"
                                            r"`make train MODELS=alpha` predicts it"):
        run_blend(here(), "mean")


# ---- Kaggle's stage 2: the saved fold models predict the new test set -------------------------------------------

@pytest.fixture
def copied(every_kind, tmp_path, monkeypatch):
    """A copy of the shared workspace where every kind's model is trained (so this test may change it)."""
    import shutil
    from conftest import select_workspace
    shutil.copytree(every_kind, tmp_path / "ws")
    return select_workspace(tmp_path / "ws", monkeypatch)


def stage_two(root):
    """test.csv replaced as Kaggle's stage 2 does: the first test texts in another order, new ones after them
    (sample_submission follows). Returns, per new row, the old row with the same text (-1: a new text)."""
    test = pd.read_csv(root / "input" / "test.csv")
    kept = test.iloc[::-1].iloc[:12]
    new = pd.DataFrame({"qid": [f"s{i:03d}" for i in range(6)],
                        "question_text": [f"is stage two {w} silly?" for w in ("rain", "snow", "fog", "sun", "hail",
                                                                                 "wind")]})
    table = pd.concat([kept, new], ignore_index=True)
    table.to_csv(root / "input" / "test.csv", index=False)
    table[["qid"]].assign(prediction=0).to_csv(root / "input" / "sample_submission.csv", index=False)
    return np.concatenate([kept.index.to_numpy(), np.full(len(new), -1)])


@pytest.mark.parametrize("name", ["tfidf-lr", "tiny-frozen", "tiny-tokens", "tiny-tuned", "tiny-mpnet-partial",
                                  "tiny-mpnet-full"])
def test_a_replaced_test_set_is_predicted_by_each_folds_saved_model_not_trained_for(copied, name, monkeypatch,
                                                                                    capsys):
    from core.data import load_test, texts_fingerprint
    from models import train
    before = np.load(copied / "models" / name / "test.npy")
    old_row = stage_two(copied)
    trained = []
    monkeypatch.setattr(train, "run_fold", lambda *args: trained.append(args))
    train.main(["--model", name])
    metrics = json.loads((copied / "models" / name / "metrics.json").read_text())
    after = np.load(copied / "models" / name / "test.npy")
    assert trained == [] and "its saved models of folds [0, 1] predict it" in capsys.readouterr().out
    assert metrics["test_fingerprint"] == texts_fingerprint(load_test(here()).texts) and after.shape == (18,)
    same = old_row >= 0                        # a text of the old test set: the same fold models, the same scores
    np.testing.assert_allclose(after[same], before[old_row[same]], atol=2e-3)
    assert np.isfinite(after).all() and metrics["predict_seconds"] >= 0


def test_a_test_set_predicted_half_way_resumes_at_the_folds_not_yet_predicting_it(copied, monkeypatch):
    from models import train
    stage_two(copied)
    real, calls = train.predict_fold, []

    def killed_after_the_first(kind, fold):
        calls.append(fold.k)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(kind, fold)
    monkeypatch.setattr(train, "predict_fold", killed_after_the_first)
    with pytest.raises(SystemExit):
        train.main(["--model", "tfidf-lr"])
    monkeypatch.setattr(train, "predict_fold", lambda kind, fold: calls.append(fold.k) or real(kind, fold))
    train.main(["--model", "tfidf-lr"])
    assert calls == [0, 1, 1]


def test_blends_score_the_new_test_set_with_the_fit_they_have(copied, monkeypatch):
    from core.config import load_config
    from core.data import load_competition, texts_fingerprint
    from ensembles import blend
    from folds.make_folds import load_folds
    from models import train
    members = ["tfidf-lr", "tiny-frozen", "tiny-tokens"]
    with open(copied / "pipeline.toml", "a") as config:
        config.write("".join(f'\n[blends.{m}-blend]\nmethod = "{m}"\nmembers = {json.dumps(members)}\n'
                             for m in blend.METHODS))
    names = [f"{m}-blend" for m in blend.METHODS]
    for name in names:
        blend.run_blend(here(), name)
    stage_two(copied)
    for model in members:
        train.main(["--model", model])
    fits, methods = [], dict(blend.METHODS)
    monkeypatch.setattr(blend, "METHODS", {k: (lambda *a, f=f: fits.append(a) or f(*a)) for k, f in methods.items()})
    cfg = here().config
    train_set, test_set = load_competition(here())
    for name in names:
        metrics = blend.run_blend(here(), name)
        assert metrics["test_fingerprint"] == texts_fingerprint(test_set.texts) and metrics["test"]["n"] == 18
    assert fits == []                                          # nothing fitted anew
    for name in names:                                         # what a fit on the same OOF gives the new test set
        spec = cfg.blend(name)
        scores = blend.load_members(here(), spec, train_set, test_set)
        fresh = methods[spec.method](scores.oof, train_set.target.astype(np.int64), load_folds(here(), train_set),
                                     cfg.metric)
        np.testing.assert_allclose(np.load(copied / "ensembles" / name / "test.npy"), fresh.predict(scores.test),
                                   rtol=1e-5, atol=1e-6)


def test_predicting_only_refuses_a_model_with_folds_left_to_train(copied):
    import shutil
    from core.config import load_config
    from models import train
    shutil.rmtree(copied / "models" / "tfidf-lr" / "fold1")
    (copied / "models" / "tfidf-lr" / "metrics.json").unlink()
    stage_two(copied)
    with pytest.raises(PipelineError, match=r"folds \[1\] are not trained; .*make train MODELS=tfidf-lr"):
        train.train_models(here(), ["tfidf-lr"], predict_only=True)
