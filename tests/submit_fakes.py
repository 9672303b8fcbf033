"""A tiny fake workspace for the submit stage's tests: a competition, folds, two models and a blend.

Everything is synthetic (random scores, ids like q0001); nothing here is a real result.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import COMPETITION

CONFIG = COMPETITION.replace("quora-insincere-questions-classification", "fake-comp") + """
[folds]
k = 3
seed = 1

[models.alpha]
kind = "tfidf"

[models.beta]
handle = "https://www.kaggle.com/models/google/universal-sentence-encoder/tensorFlow2/large/2"
output_dim = 512

[blends.mean]
method = "mean"
members = ["alpha", "beta"]

[ensemble]
default = "mean"
"""
N_TRAIN, N_TEST = 60, 40


def setup_env(tmp_path: Path, monkeypatch, config: str = CONFIG) -> Path:
    """PIPELINE_ROOT and CONFIG in tmp_path, an empty HOME, no Kaggle variables: tests never see real credentials."""
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(config)
    monkeypatch.setenv("PIPELINE_ROOT", str(tmp_path))
    monkeypatch.setenv("CONFIG", str(cfg))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def write_competition(root: Path, solution: bool = True, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    inp = root / "input"
    inp.mkdir(parents=True, exist_ok=True)
    train_ids = [f"t{i:04d}" for i in range(N_TRAIN)]
    y = np.array([1] * 12 + [0] * (N_TRAIN - 12))
    pd.DataFrame({"qid": train_ids, "question_text": [f"question {i}?" for i in range(N_TRAIN)],
                  "target": y}).to_csv(inp / "train.csv", index=False)
    test_ids = [f"q{i:04d}" for i in range(N_TEST)]
    pd.DataFrame({"qid": test_ids, "question_text": [f"test question {i}?" for i in range(N_TEST)]}) \
        .to_csv(inp / "test.csv", index=False)
    pd.DataFrame({"qid": test_ids, "prediction": 0}).to_csv(inp / "sample_submission.csv", index=False)
    truth = rng.integers(0, 2, N_TEST)
    if solution:
        pd.DataFrame({"qid": test_ids, "target": truth}).to_csv(inp / "solution.csv", index=False)
    fold = np.arange(N_TRAIN) % 3
    (root / "folds").mkdir(exist_ok=True)
    pd.DataFrame({"qid": train_ids, "fold": fold}).to_csv(root / "folds" / "folds.csv", index=False,
                                                          lineterminator="\n")
    return {"train_ids": train_ids, "y": y, "test_ids": test_ids, "truth": truth, "fold": fold}


def folds_fp(root: Path) -> str:
    from core.artifacts import file_fingerprint
    return file_fingerprint(root / "folds" / "folds.csv")


def fingerprint_of_test(root: Path) -> str:
    """The fingerprint of the workspace's test set, which every artifact predicting it records."""
    from core.data import texts_fingerprint
    return texts_fingerprint(pd.read_csv(root / "input" / "test.csv", dtype=str, keep_default_na=False)
                             ["question_text"].to_numpy(dtype=object))


def write_model(root: Path, name: str, threshold: float, seed: int, seconds: float = 12.0,
                oof_f1: float = 0.5, test: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "oof.npy", rng.random(N_TRAIN).astype(np.float32))
    np.save(folder / "test.npy", (rng.random(N_TEST) if test is None else test).astype(np.float32))
    metrics = {"model": name, "spec": {"name": name}, "folds_fingerprint": folds_fp(root), "k": 3,
               "test_fingerprint": fingerprint_of_test(root),
               **scoring(threshold, oof_f1, nested=oof_f1 - 0.05, auc=0.6),
               "folds": [], "wall_seconds": seconds, "examples_per_second": 100.0}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def scoring(threshold: float, oof_f1: float, nested: float, auc: float) -> dict:
    """The scoring fields of core.results' schema, with made-up values (an F1 competition)."""
    from core.results import SCHEMA
    return {"schema": SCHEMA, "metric": "f1", "threshold": threshold,
            "score": {"oof": oof_f1, "nested": nested, "nested_std": 0.01},
            "oof": {"f1": oof_f1, "threshold": threshold, "auc": auc, "log_loss": 0.5, "n": N_TRAIN, "positives": 12},
            "nested": {"score": nested, "std": 0.01, "per_fold": []}}


def write_blend(root: Path, name: str, threshold: float, seed: int, nested: float = 0.4,
                test: np.ndarray | None = None, method: str = "mean") -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "ensembles" / name
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "oof.npy", rng.random(N_TRAIN).astype(np.float32))
    np.save(folder / "test.npy", (rng.random(N_TEST) if test is None else test).astype(np.float32))
    metrics = {"blend": name, "method": method, "members": ["alpha", "beta"], "folds_fingerprint": folds_fp(root),
               "test_fingerprint": fingerprint_of_test(root),
               **scoring(threshold, 0.6, nested, auc=0.7), "spec": {"method": method}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def full_world(tmp_path: Path, monkeypatch, solution: bool = True) -> dict:
    root = setup_env(tmp_path, monkeypatch)
    facts = write_competition(root, solution=solution)
    write_model(root, "alpha", 0.5, seed=1, seconds=30.0, oof_f1=0.55)
    write_model(root, "beta", 0.3, seed=2, seconds=125.0, oof_f1=0.45)
    write_blend(root, "mean", 0.45, seed=3)
    return {"root": root, **facts}
