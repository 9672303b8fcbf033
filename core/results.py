"""The one artifact schema of models and blends: the scoring part of metrics.json, written and read here.

models.train and ensembles.blend write it (`score_section`); the blends (their members), the leaderboard
and the submission read it (`Result`), with no branching on what made an artifact:

  schema            SCHEMA: the version of these fields
  metric            the competition's metric ([competition] metric: f1, roc_auc, log_loss)
  threshold         the threshold chosen on the OOF scores for a thresholded metric (F1), else null:
                    test.npy >= threshold gives the submitted labels
  score             {"oof": the metric on the OOF scores, every choice made on the same rows (optimistic),
                     "nested": its nested-CV estimate (every choice made on the other folds), "nested_std"}
  oof               F1 at its best threshold, that threshold, AUC, log loss, n, positives (every metric)
  nested            the nested estimate fold by fold (core.metrics.nested_score)
  per_fold, stable_threshold   thresholded metrics only: each fold's own best threshold, and the threshold
                    that loses least across folds
oof.npy and test.npy beside it: float32 scores in [0, 1], in train.csv and test.csv order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.artifacts import read_json, read_npy
from core.data import Split, texts_fingerprint
from core.errors import PipelineError
from core.metrics import Metric, metric_named, nested_score, summarize, threshold_report
from core.run import Run

SCHEMA = 2


def score_section(metric: Metric, y, oof, fold, refit: Callable[[int], np.ndarray] | None = None) -> dict:
    """The schema's fields for OOF scores `oof` (float32 as saved). refit: the procedure that made them,
    re-run without each fold's labels (a blend's fit), so that its nested estimate nests every choice."""
    oof = np.asarray(oof, dtype=np.float32)
    nesting = oof if refit is None else refit
    report = threshold_report(y, oof, fold, refit) if metric.thresholded else \
        {"oof": summarize(y, oof), "nested": nested_score(metric, y, nesting, fold)}
    value, threshold = metric.oof(y, oof)
    return {"schema": SCHEMA, "metric": metric.name, "threshold": threshold, **report,
            "score": {"oof": value, "nested": report["nested"]["score"], "nested_std": report["nested"]["std"]}}


@dataclass(frozen=True)
class Result:
    """A finished model or blend, as every later stage reads it."""
    kind: str                 # "model" or "blend"
    name: str
    folder: Path
    metrics: dict

    @property
    def metric(self) -> Metric:
        return metric_named(self.metrics["metric"])

    @property
    def threshold(self) -> float | None:
        return self.metrics["threshold"]

    @property
    def oof_score(self) -> float:
        return float(self.metrics["score"]["oof"])

    @property
    def nested_score(self) -> float:
        return float(self.metrics["score"]["nested"])

    @property
    def auc(self) -> float | None:
        return _number(self.metrics["oof"].get("auc"))

    @property
    def seconds(self) -> float | None:
        return _number(self.metrics.get("wall_seconds"))

    @property
    def members(self) -> list[str]:
        return list(self.metrics.get("members", [self.name]))

    def check(self) -> "Result":
        """The result itself, or a PipelineError when it was written in an older schema."""
        if self.metrics.get("schema") != SCHEMA:
            raise PipelineError(f"{self.folder / 'metrics.json'}: written by an older version of the pipeline "
                                f"(schema {self.metrics.get('schema', 1)}, now {SCHEMA}); "
                                f"{rebuild_hint(self.kind, self.name)} brings it up to date")
        return self

    @property
    def test_fingerprint(self) -> str | None:
        """The test set its test.npy predicts (core.data.texts_fingerprint); a model from before it was recorded
        has it in its stamp."""
        return self.metrics.get("test_fingerprint") or (self.metrics.get("stamp") or {}).get("test_texts")

    def test_scores(self, test: Split) -> np.ndarray:
        """test.npy, checked as `scores` does and refused when it predicts another test set than `test`."""
        current, made_for = texts_fingerprint(test.texts), self.test_fingerprint or "not recorded"
        if made_for != current:
            raise PipelineError(f"{self.folder / 'test.npy'}: predicts another test set ({made_for}; the "
                                f"competition's test set is now {current}); {predict_hint(self.kind, self.name)}")
        return self.scores("test", len(test))

    def scores(self, split: str, n: int) -> np.ndarray:
        """oof.npy or test.npy as float64, checked: one score per row, finite, in [0, 1]."""
        return read_scores(self.folder / f"{split}.npy", n, f"rebuild it: {rebuild_hint(self.kind, self.name)}")


def read_scores(path: Path, n: int | None, fix: str) -> np.ndarray:
    """Scores saved as .npy, as float64, checked: readable whole, one per row (of `n`, where given), finite, in
    [0, 1]."""
    s = read_npy(path, fix, rows=n).astype(np.float64).ravel()
    bad = np.flatnonzero(~np.isfinite(s) | (s < 0) | (s > 1))
    if len(bad):
        raise PipelineError(f"{path}: {len(bad):,} score(s) that are NaN, infinite or outside [0, 1], first at "
                            f"row {bad[0] + 1}" + (f"; {fix}" if fix else ""))
    return s


def damaged(kind: str, folder: Path, n_train: int, test: Split, json_files: tuple[str, ...] = ()) -> str | None:
    """Why a finished model's or blend's artifacts cannot be used (metrics.json or a JSON file of `json_files`
    unreadable, oof.npy or test.npy cut short, of another length than the rows they predict, holding no scores),
    or None: its stage then makes them again. (A test.npy made for another test set is no damage: it is
    predicted anew.)"""
    try:
        for name in json_files:
            read_json(folder / name)
        result = _result(kind, folder)
        read_scores(folder / "oof.npy", n_train, "")
        read_scores(folder / "test.npy", len(test) if result.test_fingerprint == texts_fingerprint(test.texts)
                    else None, "")
    except PipelineError as e:
        return str(e)
    return None


def read_result(run: Run, kind: str, name: str) -> Result:
    folder = run.ensemble_dir(name) if kind == "blend" else run.model_dir(name)
    if not (folder / "metrics.json").exists():
        raise PipelineError(f"{folder / 'metrics.json'} not found: the {kind} {name!r} is not finished; "
                            f"{rebuild_hint(kind, name)}")
    return _result(kind, folder).check()


def all_results(run: Run) -> list[Result]:
    """Every finished model (models/*/metrics.json) and blend (ensembles/*/metrics.json), unchecked."""
    return [_result(kind, path.parent) for kind, parent in (("model", "models"), ("blend", "ensembles"))
            for path in sorted((run.workspace / parent).glob("*/metrics.json"))]


def rebuild_hint(kind: str, name: str) -> str:
    """What rebuilds a model or blend, or repairs a damaged one (its stage checks its own artifacts first)."""
    if kind == "blend":
        return f"`make ensemble` (or `python -m ensembles.blend --blend {name}`)"
    return f"`make train MODELS={name}` (or `python -m models.train --model {name}`)"


def predict_hint(kind: str, name: str) -> str:
    """What predicts a changed test set with a finished model or blend."""
    if kind == "blend":
        return "`make ensemble` predicts it with the blend's members (after `make train`)"
    return f"`make train MODELS={name}` predicts it with the model's saved fold models"


def _result(kind: str, folder: Path) -> Result:
    return Result(kind, folder.name, folder, read_json(folder / "metrics.json", rebuild_hint(kind, folder.name)))


def _number(value) -> float | None:
    return None if value is None else float(value)
