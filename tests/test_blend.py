"""Blends (ensembles.blend) on a small synthetic workspace with fake member artifacts."""
import json

import numpy as np
import pandas as pd
import pytest

from core.artifacts import write_bytes, write_json, write_npy
from core.config import load_config
from core.data import load_train
from core.errors import PipelineError
from core.metrics import F1, best_threshold, f1_at, summarize
from ensembles.blend import METHODS, fit_stacking, main, nested_scores, run_blend
from folds.make_folds import assign_folds, folds_csv, folds_fingerprint

from conftest import COMPETITION, here
from submit_fakes import scoring, fingerprint_of_test

N_TRAIN, N_TEST, K = 1500, 400, 4
MEMBERS = ["a", "b", "c"]
CONFIG = COMPETITION.replace("quora-insincere-questions-classification", "synthetic") + """
[folds]
k = {k}
seed = 7

[models.a]
kind = "tfidf"
[models.b]
kind = "tfidf"
[models.c]
kind = "tfidf"
[models.off]
kind = "tfidf"
enabled = false
"""


def blend_table(name, method, members=MEMBERS):
    return f'\n[blends.{name}]\nmethod = "{method}"\nmembers = {json.dumps(list(members))}\n'


def write_config(root, blends: str) -> None:
    (root / "pipeline.toml").write_text(CONFIG.format(k=K) + blends)


def make_workspace(root, env) -> None:
    """train/test CSVs, folds, and a config with one blend per method, under root (env: a MonkeyPatch)."""
    env.setenv("PIPELINE_ROOT", str(root))
    env.setenv("CONFIG", str(root / "pipeline.toml"))
    env.delenv("FORCE", raising=False)
    write_config(root, "".join(blend_table(m, m) for m in METHODS))
    rng = np.random.default_rng(0)
    y = (rng.random(N_TRAIN + N_TEST) < 0.1).astype(int)
    ids = np.array([f"q{i}" for i in range(len(y))])
    (root / "input").mkdir(parents=True)
    pd.DataFrame({"qid": ids[:N_TRAIN], "question_text": "why?", "target": y[:N_TRAIN]}).to_csv(
        root / "input" / "train.csv", index=False)
    pd.DataFrame({"qid": ids[N_TRAIN:], "question_text": "why?"}).to_csv(root / "input" / "test.csv", index=False)
    cfg = here().config
    train = load_train(here())
    write_bytes(root / "folds" / "folds.csv", folds_csv(train, assign_folds(train.target, K, 7), cfg))


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A fresh workspace for tests that change it."""
    make_workspace(tmp_path, monkeypatch)
    return tmp_path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One workspace with every method's blend built once (plots and fits take seconds): (root, metrics)."""
    with pytest.MonkeyPatch.context() as env:
        root = tmp_path_factory.mktemp("built")
        make_workspace(root, env)
        write_members(root)
        metrics = {m: run_blend(here(), m) for m in METHODS}
        yield root, metrics


def labels(root):
    return pd.read_csv(root / "input" / "train.csv")["target"].to_numpy()


def folds(root):
    return pd.read_csv(root / "folds" / "folds.csv")["fold"].to_numpy()


def noisy_member(y, rng, noise=1.2):
    """A member: the shared signal plus its own independent noise, as a probability."""
    z = 2.0 * y - 2.5 + rng.normal(0, noise, len(y))
    return (1 / (1 + np.exp(-z))).astype(np.float32)


def write_member(root, name, oof, test, fingerprint=None):
    folder = root / "models" / name
    write_npy(folder / "oof.npy", np.asarray(oof, dtype=np.float32))
    write_npy(folder / "test.npy", np.asarray(test, dtype=np.float32))
    write_json(folder / "metrics.json", {"model": name, "folds_fingerprint": fingerprint or folds_fingerprint(here()),
                                         "test_fingerprint": fingerprint_of_test(root),
                                         "k": K, "spec": {"name": name}, **scoring(0.5, 0.5, 0.5, 0.5)})


def write_members(root, seed=1, names=MEMBERS):
    rng = np.random.default_rng(seed)
    y = labels(root)
    y_test = rng.random(N_TEST) < 0.1
    for name in names:
        write_member(root, name, noisy_member(y, rng), noisy_member(y_test, rng))


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_writes_valid_artifacts(built, method):
    root, _ = built
    folder = root / "ensembles" / method
    oof, test = np.load(folder / "oof.npy"), np.load(folder / "test.npy")
    assert oof.dtype == test.dtype == np.float32 and oof.shape == (N_TRAIN,) and test.shape == (N_TEST,)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {"blend", "method", "members", "folds_fingerprint", "schema", "metric", "threshold", "score", "oof",
            "nested", "per_fold", "stable_threshold", "spec"} <= set(metrics)
    assert metrics["members"] == MEMBERS and metrics["method"] == method and len(metrics["folds_fingerprint"]) == 16
    assert [r["fold"] for r in metrics["per_fold"]] == list(range(K))
    assert set(json.loads((folder / "weights.json").read_text())["by_member"]) == set(MEMBERS)
    assert (folder / "f1_threshold.png").stat().st_size > 0 and (folder / "precision_recall.png").exists()


@pytest.mark.parametrize("method", list(METHODS))
def test_metrics_agree_with_arrays(built, method):
    root, all_metrics = built
    metrics, folder, y = all_metrics[method], root / "ensembles" / method, labels(root)
    oof, test = np.load(folder / "oof.npy"), np.load(folder / "test.npy")
    threshold = metrics["threshold"]
    assert f1_at(y, oof, threshold) == metrics["oof"]["f1"] == summarize(y, oof)["f1"]
    assert int((test >= threshold).sum()) == metrics["test"]["predicted_positive"]
    for row in metrics["per_fold"]:
        held = folds(root) == row["fold"]
        assert f1_at(y[held], oof[held], row["threshold"]) == row["f1"]


@pytest.mark.parametrize("method", ["weighted", "caruana"])
def test_fitted_weights_are_non_negative_and_sum_to_one(built, method):
    weights = np.array(json.loads((built[0] / "ensembles" / method / "weights.json").read_text())["weights"])
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1)


@pytest.mark.parametrize("method", ["mean", "weighted", "stacking", "caruana"])
def test_blend_nested_f1_beats_the_best_member(built, method):
    metrics = built[1][method]
    best_member = max(s["nested_score"] for s in metrics["member_scores"].values())
    assert metrics["score"]["nested"] > best_member + 0.02


def test_members_on_different_folds_are_refused(ws):
    write_members(ws)
    write_member(ws, "c", *[np.load(ws / "models" / "c" / f) for f in ("oof.npy", "test.npy")],
                 fingerprint="0123456789abcdef")
    with pytest.raises(PipelineError, match=r"different folds.*a, b on folds .*c on folds 0123456789abcdef"):
        run_blend(here(), "mean")


def test_members_on_old_folds_are_refused(ws):
    write_members(ws)
    for name in MEMBERS:
        write_member(ws, name, *[np.load(ws / "models" / name / f) for f in ("oof.npy", "test.npy")],
                     fingerprint="0123456789abcdef")
    with pytest.raises(PipelineError, match=r"a, b, c were trained on folds 0123456789abcdef.*make train"):
        run_blend(here(), "mean")


def test_missing_member_says_make_train_first(ws, capsys):
    write_members(ws, names=["a", "b"])
    with pytest.raises(SystemExit) as exit_:
        main(["--blend", "mean"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "model(s) c" in err and "run `make train` first" in err


def test_disabled_member_is_refused(ws):
    write_config(ws, blend_table("mean", "mean", ["a", "off"]))
    with pytest.raises(PipelineError, match="disabled model.*off"):
        run_blend(here(), "mean")


def test_unknown_method_is_refused_when_the_configuration_loads(ws):
    write_config(ws, blend_table("odd", "median"))
    with pytest.raises(PipelineError, match=r"\[blends.odd\] method must be one of 'mean', 'rank_mean'"):
        run_blend(here(), "odd")


def test_the_configuration_knows_every_blend_method_and_no_other():
    from core.config import BLEND_METHODS
    from ensembles.blend import METHODS
    assert tuple(METHODS) == BLEND_METHODS


def test_identical_rerun_is_up_to_date(ws, capsys):
    write_members(ws)
    run_blend(here(), "mean")
    marker = ws / "ensembles" / "mean" / "metrics.json"
    before = marker.stat().st_ino               # artifacts are written as new files: a rewrite changes the inode
    run_blend(here(), "mean")
    assert marker.stat().st_ino == before and "up to date" in capsys.readouterr().out


def test_changed_spec_is_refused_unless_force(ws, monkeypatch):
    write_members(ws)
    run_blend(here(), "mean")
    write_config(ws, blend_table("mean", "mean", ["a", "b"]))
    with pytest.raises(PipelineError, match="different spec.*FORCE=1"):
        run_blend(here(), "mean")
    monkeypatch.setenv("FORCE", "1")
    assert run_blend(here(), "mean")["members"] == ["a", "b"]


def test_a_blend_records_its_run_and_its_table(built):
    run = json.loads((built[0] / "ensembles" / "mean" / "metrics.json").read_text())["run"]
    assert run["config"]["blends.mean"] == {"name": "mean", "method": "mean", "members": MEMBERS, "enabled": True}
    assert run["config"]["folds"] == {"k": K, "seed": 7} and run["devices"] == "CPU"
    assert run["code"]["commit"] and run["versions"]["scikit-learn"] and run["started"] <= run["finished"]


def test_retrained_members_rebuild_the_blend(ws):
    write_members(ws)
    first = run_blend(here(), "mean")
    write_members(ws, seed=2)
    assert run_blend(here(), "mean")["score"]["oof"] != first["score"]["oof"]


def test_rank_mean_maps_test_scores_into_oof_rank_space(ws):
    # test rows that carry exactly some OOF rows' member scores must get exactly those rows' blend scores
    write_members(ws)
    for name in MEMBERS:
        oof = np.load(ws / "models" / name / "oof.npy")
        write_member(ws, name, oof, oof[:N_TEST])
    run_blend(here(), "rank_mean")
    folder = ws / "ensembles" / "rank_mean"
    np.testing.assert_array_equal(np.load(folder / "test.npy"), np.load(folder / "oof.npy")[:N_TEST])


def test_stacking_oof_does_not_see_its_own_fold_labels():
    rng = np.random.default_rng(3)
    y = (rng.random(800) < 0.2).astype(int)
    P = np.stack([noisy_member(y, rng) for _ in range(3)], axis=1).astype(np.float64)
    fold = np.arange(800) % 4
    flipped = np.where(fold == 0, 1 - y, y)
    np.testing.assert_allclose(fit_stacking(P, y, fold, F1).oof[fold == 0], fit_stacking(P, flipped, fold, F1).oof[fold == 0])


@pytest.mark.parametrize("method", list(METHODS))
def test_nested_scores_do_not_see_held_out_labels(method):
    rng = np.random.default_rng(4)
    y = (rng.random(800) < 0.2).astype(int)
    P = np.stack([noisy_member(y, rng) for _ in range(3)], axis=1).astype(np.float64)
    fold = np.arange(800) % 4
    flipped = np.where(fold == 1, 1 - y, y)
    fit = METHODS[method]
    a, b = nested_scores(fit, P, y, fold, 1, F1), nested_scores(fit, P, flipped, fold, 1, F1)
    np.testing.assert_array_equal(a, b)
    assert best_threshold(y[fold != 1], a[fold != 1]) == best_threshold(flipped[fold != 1], b[fold != 1])
