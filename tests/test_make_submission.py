"""submit.make_submission: labels, order, manifest, and refusing corrupt submissions."""
import json

import numpy as np
import pandas as pd
import pytest

from core.errors import PipelineError
from submit_fakes import CONFIG, N_TEST, full_world, setup_env, write_blend, write_competition, write_model
from conftest import here


def test_blend_labels_are_test_scores_at_blend_threshold_in_sample_order(tmp_path, monkeypatch):
    from submit.make_submission import make
    w = full_world(tmp_path, monkeypatch)
    path = make(here(), "blend", "mean")
    table = pd.read_csv(path, dtype={"qid": str})
    sample = pd.read_csv(tmp_path / "input" / "sample_submission.csv", dtype={"qid": str})
    assert list(table.columns) == ["qid", "prediction"]
    assert table["qid"].tolist() == sample["qid"].tolist()
    scores = np.load(tmp_path / "ensembles" / "mean" / "test.npy")
    expected = dict(zip(w["test_ids"], (scores >= 0.45).astype(int)))
    assert table["prediction"].tolist() == [expected[q] for q in table["qid"]]


def test_model_submission_uses_oof_threshold(tmp_path, monkeypatch):
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    scores = np.linspace(0, 1, N_TEST)
    write_model(tmp_path, "alpha", 0.3, seed=1, test=scores)
    table = pd.read_csv(make(here(), "model", "alpha"))
    assert table["prediction"].sum() == int((scores.astype(np.float32) >= 0.3).sum())


def test_manifest_records_threshold_members_fingerprint_and_f1(tmp_path, monkeypatch):
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    manifest = json.loads(make(here(), "blend", "mean").with_suffix(".json").read_text())
    metrics = json.loads((tmp_path / "ensembles" / "mean" / "metrics.json").read_text())
    assert manifest["blend"] == "mean"
    assert manifest["threshold"] == 0.45
    assert manifest["members"] == ["alpha", "beta"]
    assert manifest["folds_fingerprint"] == metrics["folds_fingerprint"]
    assert manifest["metric"] == "f1" and manifest["oof_score"] == 0.6 and manifest["nested_score"] == 0.4
    assert manifest["rows"] == N_TEST


def test_nan_test_scores_are_refused_with_reason(tmp_path, monkeypatch):
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    scores = np.full(N_TEST, 0.9)
    scores[7] = np.nan
    write_blend(tmp_path, "mean", 0.45, seed=3, test=scores)
    with pytest.raises(PipelineError, match="NaN"):
        make(here(), "blend", "mean")
    assert not (tmp_path / "submit" / "mean.csv").exists()


def test_wrong_length_test_scores_are_refused(tmp_path, monkeypatch):
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    write_blend(tmp_path, "mean", 0.45, seed=3, test=np.zeros(N_TEST - 1))
    with pytest.raises(PipelineError, match="39 rows where 40 were expected"):
        make(here(), "blend", "mean")


def test_validation_names_every_problem_of_a_corrupt_table(tmp_path, monkeypatch):
    from core.config import load_config
    from submit.make_submission import problems
    full_world(tmp_path, monkeypatch)
    sample = pd.read_csv(tmp_path / "input" / "sample_submission.csv", dtype=str)
    bad = sample.iloc[:-1].copy()
    bad["prediction"] = "1"
    bad.iloc[0, 1] = "0.7"
    found = "; ".join(problems(bad, sample, here().config))
    assert "rows" in found and "missing" in found and "0 or 1" in found


def test_validation_rejects_nan_labels(tmp_path, monkeypatch):
    from core.config import load_config
    from submit.make_submission import problems
    full_world(tmp_path, monkeypatch)
    sample = pd.read_csv(tmp_path / "input" / "sample_submission.csv", dtype=str)
    table = sample.copy()
    table["prediction"] = [np.nan] + [1] * (len(table) - 1)
    assert any("NaN" in p for p in problems(table, sample, here().config))


def test_missing_blend_says_how_to_build_it(tmp_path, monkeypatch):
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    with pytest.raises(PipelineError, match="make ensemble"):
        make(here(), "blend", "stacked")


TWO_BLENDS = CONFIG.replace('[ensemble]\ndefault = "mean"\n', "") + \
    '\n[blends.stacked]\nmethod = "stacking"\nmembers = ["alpha", "beta"]\n'


def two_blends(tmp_path, monkeypatch, mean: float, stacked: float, config: str = TWO_BLENDS):
    setup_env(tmp_path, monkeypatch, config)
    write_competition(tmp_path)
    write_blend(tmp_path, "mean", 0.45, seed=3, nested=mean)
    write_blend(tmp_path, "stacked", 0.45, seed=4, nested=stacked, method="stacking")


def test_the_blend_sent_is_the_one_with_the_best_nested_score(tmp_path, monkeypatch):
    from ensembles.blend import chosen
    two_blends(tmp_path, monkeypatch, mean=0.40, stacked=0.46)
    name, why = chosen(here())
    assert name == "stacked" and "best nested F1 of the blends: 0.4600; mean 0.4000" in why


def test_blends_tied_on_nested_score_send_the_simpler_method(tmp_path, monkeypatch):
    from ensembles.blend import chosen
    two_blends(tmp_path, monkeypatch, mean=0.46, stacked=0.46005)
    name, why = chosen(here())
    assert name == "mean" and "the simpler method" in why


def test_a_blend_named_in_the_configuration_is_sent_whatever_the_scores(tmp_path, monkeypatch):
    from ensembles.blend import chosen
    two_blends(tmp_path, monkeypatch, mean=0.40, stacked=0.46, config=TWO_BLENDS + '\n[ensemble]\ndefault = "mean"\n')
    assert chosen(here()) == ("mean", "[ensemble] default names it")


def test_the_submission_sent_says_which_blend_and_why(tmp_path, monkeypatch):
    from submit.make_submission import make
    two_blends(tmp_path, monkeypatch, mean=0.40, stacked=0.46)
    path = make(here())
    sent = json.loads((tmp_path / "submit" / "sent.json").read_text())
    assert path.name == "stacked.csv" and sent["file"] == "stacked.csv" and "best nested F1" in sent["why"]
    assert "best nested F1" in json.loads(path.with_suffix(".json").read_text())["sent"]
