"""The metric a competition names ([competition] metric): what models, blends, the leaderboard and submissions follow."""
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from conftest import here, write_competition, write_vectors
from core.config import load_config
from core.errors import PipelineError
from core.metrics import LOG_LOSS, ROC_AUC
from ensembles.blend import fit_caruana, run_blend
from folds import make_folds
from models import train


def use_metric(root, name):
    config = root / "pipeline.toml"
    text = config.read_text()
    if "metric = " in text:
        text = text[:text.index("metric = ")] + text[text.index("\n", text.index("metric = ")) + 1:]
    config.write_text(text.replace('prediction = "prediction"\n', f'prediction = "prediction"\nmetric = "{name}"\n'))


@pytest.fixture
def auc_world(workspace):
    """The small competition scored by ROC AUC, folds made, the tiny module built."""
    from models.modules.build import main as build_modules
    write_competition(workspace)
    write_vectors(workspace / "vectors.txt")
    use_metric(workspace, "roc_auc")
    make_folds.main()
    build_modules([])
    return workspace


def test_an_unknown_metric_is_refused_naming_the_known_ones(workspace):
    use_metric(workspace, "accuracy")
    with pytest.raises(PipelineError, match="metric 'accuracy' is not known; known metrics: f1, roc_auc, log_loss"):
        here().config


def test_a_model_scored_by_auc_records_no_threshold_and_its_auc(auc_world):
    train.main(["--model", "tfidf-lr"])
    metrics = json.loads((auc_world / "models" / "tfidf-lr" / "metrics.json").read_text())
    oof = np.load(auc_world / "models" / "tfidf-lr" / "oof.npy")
    y = pd.read_csv(auc_world / "input" / "train.csv")["target"].to_numpy()
    assert metrics["metric"] == "roc_auc" and metrics["threshold"] is None
    assert metrics["score"]["oof"] == pytest.approx(roc_auc_score(y, oof))
    assert "stable_threshold" not in metrics and len(metrics["nested"]["per_fold"]) == 3


def test_an_auc_submission_holds_probabilities_and_the_leaderboard_ranks_by_auc(auc_world):
    from submit.leaderboard import build, markdown
    from submit.make_submission import make
    train.main(["--model", "tfidf-lr"])
    train.main(["--model", "tiny-frozen"])
    run_blend(here(), "mean")
    table = pd.read_csv(make(here(), "blend", "mean"))
    test = np.load(auc_world / "ensembles" / "mean" / "test.npy")
    assert not set(table["prediction"]) <= {0, 1}
    np.testing.assert_allclose(np.sort(table["prediction"]), np.sort(test), rtol=1e-6)
    board = build(here())
    assert "OOF AUC" in markdown(board) and "OOF F1" not in markdown(board)
    nested = [r.nested for r in board.rows]
    assert nested == sorted(nested, reverse=True)


def test_changing_the_metric_rescores_finished_models_without_retraining(auc_world, monkeypatch):
    train.main(["--model", "tfidf-lr"])
    use_metric(auc_world, "f1")
    trained = []
    monkeypatch.setattr(train, "run_fold", lambda trainer, fold: trained.append(fold.k))
    train.main(["--model", "tfidf-lr"])
    metrics = json.loads((auc_world / "models" / "tfidf-lr" / "metrics.json").read_text())
    assert trained == [] and metrics["metric"] == "f1" and metrics["threshold"] is not None


def test_log_loss_ranks_the_lowest_first():
    assert sorted([0.3, 0.1, 0.2], key=LOG_LOSS.ranking_key) == [0.1, 0.2, 0.3]
    assert sorted([0.6, 0.9, 0.7], key=ROC_AUC.ranking_key) == [0.9, 0.7, 0.6]


def test_caruana_under_log_loss_picks_the_member_with_the_lowest_log_loss():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(int)
    good = np.clip(0.15 + 0.6 * y + rng.normal(0, 0.05, 400), 0.01, 0.99)
    poor = np.clip(0.5 + 0.1 * y + rng.normal(0, 0.2, 400), 0.01, 0.99)
    fitted = fit_caruana(np.stack([poor, good], axis=1), y, np.arange(400) % 4, LOG_LOSS)
    assert fitted.params["picks"][0] == 1
    assert log_loss(y, fitted.oof) <= log_loss(y, good) + 1e-9
