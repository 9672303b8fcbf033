"""The competition's metric (`Metric`: F1 on 0/1 labels, ROC AUC, log loss) and every threshold rule built on
F1's one exact search.

Everything here takes numpy arrays (labels y, scores, fold ids) and returns floats or plain dicts, so
training, blending and the leaderboard report the same numbers. "Positive" always means score >= threshold.

Thresholds are made exactly representable in the scores' own float type: NumPy 2 compares a float32
array with a Python float in float32, so a float64 midpoint between two neighbouring float32 scores
could round onto the lower one and `test.npy >= threshold` would not give the labels the F1 was
measured with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

TIE = 1e-12          # F1 values closer than this are ties (they are ratios of counts; rounding differs by ulps)


# ---- the exact search -------------------------------------------------------------------------------

def _as_arrays(y, scores) -> tuple[np.ndarray, np.ndarray, type]:
    """Labels as bool, scores as float64, and the float type thresholds must be exact in."""
    y = np.asarray(y)
    raw = np.asarray(scores)
    if y.shape != raw.shape or raw.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {raw.shape} must be 1-D arrays of the same length")
    s = raw.astype(np.float64)
    if np.isnan(s).any():
        raise ValueError(f"scores contain {int(np.isnan(s).sum())} NaN value(s)")
    kind = raw.dtype.type if raw.dtype.kind == "f" else np.float64
    return y.astype(bool), s, kind


def _cuts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort once. Cut i predicts positive where s >= cut[i]; cut[i] are the distinct scores, descending.

    Returns (cut, tp, predicted): true positives and predicted positives of each cut. Every threshold
    between two neighbouring distinct scores gives the same labels, so these are all the outcomes.
    """
    order = np.argsort(-s)                           # unstable is fine (and ~2.5x faster): ties are grouped below
    s_desc = s[order]
    last_of_value = np.flatnonzero(np.r_[s_desc[1:] != s_desc[:-1], True])
    return s_desc[last_of_value], np.cumsum(y[order])[last_of_value], last_of_value + 1


def _f1(tp, predicted, positives) -> np.ndarray:
    """2TP / (predicted + actual positives), 0 where both are 0 (sklearn's zero_division=0)."""
    tp, denom = np.asarray(tp, dtype=np.float64), np.asarray(predicted + positives, dtype=np.float64)
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def _middle(is_best: np.ndarray) -> int:
    """Index of the middle candidate among those flagged best (the upper middle of an even count's two).

    Why the middle: of several equally good cuts, the one farthest from both ends of the tied range
    moves least when the test scores shift slightly.
    """
    tied = np.flatnonzero(is_best)
    return int(tied[len(tied) // 2])


def _threshold_for(cut: np.ndarray, j: int, kind: type) -> float:
    """A threshold giving exactly cut j's labels: the centre of (cut[j+1], cut[j]], exact in `kind`."""
    upper = cut[j]
    if j + 1 == len(cut):                            # every row is positive: the lowest score itself
        return float(upper)
    lower = cut[j + 1]
    t = float(kind((upper + lower) / 2))             # rounding to float32 may land on a neighbour
    return t if lower < t <= upper else float(upper)


def _none_positive(cut: np.ndarray, kind: type) -> float:
    """A threshold above every score: predict no positive."""
    return float(np.nextafter(kind(cut[0]), kind(np.inf)))


def f1_at(y, scores, threshold: float) -> float:
    """F1 of predicting positive where score >= threshold (0 when there is nothing to score)."""
    y, _, _ = _as_arrays(y, scores)
    pred = np.asarray(scores) >= threshold           # in the scores' own type, as every consumer compares
    return float(_f1(np.sum(pred & y), pred.sum(), y.sum()))


def best_threshold(y, scores) -> tuple[float, float]:
    """The exact best-F1 threshold over every distinct score: sort once, O(n log n). Returns (threshold, f1).

    Each distinct score is one candidate cut. Among cuts tied for the best F1 the middle one is taken
    (`_middle`), and the threshold is the centre of the interval of thresholds giving that cut's labels:
    halfway between its score and the next lower distinct score (the lowest score when every row is
    positive), exact in the scores' float type. With no positive label every F1 is 0: predict none.
    """
    y, s, kind = _as_arrays(y, scores)
    if len(s) == 0:
        raise ValueError("best_threshold needs at least one score")
    cut, tp, predicted = _cuts(y, s)
    f1 = _f1(tp, predicted, y.sum())
    best = f1.max()
    if best <= 0:
        return _none_positive(cut, kind), 0.0
    return _threshold_for(cut, _middle(f1 >= best - TIE), kind), float(best)


def f1_curve(y, scores) -> dict[str, np.ndarray]:
    """Every cut's threshold (its score), F1, precision and recall, thresholds descending: for plots."""
    y, s, _ = _as_arrays(y, scores)
    cut, tp, predicted = _cuts(y, s)
    positives = max(int(y.sum()), 1)
    return {"threshold": cut, "f1": _f1(tp, predicted, y.sum()),
            "precision": tp / predicted, "recall": tp / positives}


# ---- thresholds across folds ---------------------------------------------------------------------------

def _folds(fold, n: int) -> tuple[np.ndarray, list[int]]:
    fold = np.asarray(fold)
    if fold.shape != (n,):
        raise ValueError(f"fold ids {fold.shape} must have one entry per score ({n})")
    return fold, [int(k) for k in np.unique(fold)]


def fold_thresholds(y, scores, fold) -> list[dict]:
    """Each fold's own best threshold and F1 (chosen and scored on the same fold: optimistic).

    Returns [{fold, f1, threshold, n, positives}] in fold order.
    """
    y, scores = np.asarray(y), np.asarray(scores)
    fold, ids = _folds(fold, len(scores))
    rows = []
    for k in ids:
        held = fold == k
        threshold, f1 = best_threshold(y[held], scores[held])
        rows.append({"fold": k, "f1": f1, "threshold": threshold,
                     "n": int(held.sum()), "positives": int(np.asarray(y[held]).astype(bool).sum())})
    return rows


def _fold_f1_at_cuts(y: np.ndarray, s: np.ndarray, in_fold: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """F1 of one fold's rows at every pooled cut (positive where s >= cut), by binary search: O(m log n)."""
    fs, fy = s[in_fold], y[in_fold]
    positives_sorted, all_sorted = np.sort(fs[fy]), np.sort(fs)
    tp = len(positives_sorted) - np.searchsorted(positives_sorted, cut, side="left")
    predicted = len(all_sorted) - np.searchsorted(all_sorted, cut, side="left")
    return _f1(tp, predicted, len(positives_sorted))


def stable_threshold(y, scores, fold) -> dict:
    """The threshold that loses least F1 across folds: minimax regret over every pooled cut.

    Fold k's regret at threshold t is (fold k's own best F1) - (fold k's F1 at t). The stable
    threshold minimises the largest regret over the folds; ties go to the lower mean regret, then
    to the middle cut (`_middle`), and the threshold is that cut's interval centre as in
    `best_threshold`. Candidates are all distinct pooled scores, so the search is exact. Regret rather
    than raw F1 because folds differ in how hard they are: maximising the minimum F1 would just serve
    the hardest fold. Returns {threshold, max_regret, mean_regret, mean_f1, min_f1,
    per_fold [{fold, f1, best_f1, regret}], rule}.
    """
    y, s, kind = _as_arrays(y, scores)
    fold, ids = _folds(fold, len(s))
    cut, _, _ = _cuts(y, s)
    f1 = np.stack([_fold_f1_at_cuts(y, s, fold == k, cut) for k in ids])      # (folds, cuts)
    regret = f1.max(axis=1, keepdims=True) - f1
    worst, mean = regret.max(axis=0), regret.mean(axis=0)
    is_best = worst <= worst.min() + TIE
    is_best &= mean <= mean[is_best].min() + TIE
    j = _middle(is_best)
    return {"threshold": _threshold_for(cut, j, kind),
            "max_regret": float(worst[j]), "mean_regret": float(mean[j]),
            "mean_f1": float(f1[:, j].mean()), "min_f1": float(f1[:, j].min()),
            "per_fold": [{"fold": k, "f1": float(f1[i, j]), "best_f1": float(f1[i].max()),
                          "regret": float(regret[i, j])} for i, k in enumerate(ids)],
            "rule": "minimise the largest per-fold F1 regret (fold best F1 - fold F1 at t) over all distinct scores"}


def nested_score(metric: "Metric", y, scores: np.ndarray | Callable[[int], np.ndarray], fold) -> dict:
    """An honest estimate of `metric`: for each fold, make every choice on the other folds, score this fold.

    `scores` is either an array (every row's OOF score; only the threshold, where the metric has one, is
    chosen on other folds) or a function `held_out -> array` giving every row's score from a procedure
    (blend weights, model selection, a stacker...) fitted without fold `held_out`'s labels: the threshold
    is then chosen on that array's other-fold rows too, so every choice is nested. Returns {score: mean of
    the per-fold scores (each fold is a test-set-sized sample, as the leaderboard is), std, per_fold
    [{fold, score, threshold}]}, and for a thresholded metric pooled: the score of all rows' nested 0/1
    predictions together.
    """
    y = np.asarray(y).astype(np.int64)
    fold, ids = _folds(fold, len(y))
    predicted = np.zeros(len(y), dtype=np.float32)
    per_fold = []
    for k in ids:
        s = np.asarray(scores(k) if callable(scores) else scores)
        held = fold == k
        threshold = metric.choose(y[~held], s[~held])
        if threshold is not None:
            predicted[held] = s[held] >= threshold
        per_fold.append({"fold": k, "score": metric.at(y[held], s[held], threshold), "threshold": threshold})
    values = [r["score"] for r in per_fold]
    out = {"score": float(np.mean(values)), "std": float(np.std(values)), "per_fold": per_fold}
    if metric.thresholded:
        out["pooled"] = float(metric.at(y, predicted, 0.5))
    return out


# ---- summaries -------------------------------------------------------------------------------------------

def summarize(y, scores) -> dict:
    """The scores every artifact reports: F1 at the best threshold, AUC, log loss.

    The threshold is searched on the scores as given (clipping first could merge distinct scores and
    give a threshold the saved predictions do not reproduce); only log loss sees clipped scores.
    """
    y = np.asarray(y)
    threshold, f1 = best_threshold(y, scores)
    p = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    return {
        "f1": f1,
        "threshold": threshold,
        "auc": _auc(y, p),
        "log_loss": _log_loss(y, p),
        "n": int(len(y)),
        "positives": int(y.sum()),
    }


def threshold_report(y, scores, fold, refit: Callable[[int], np.ndarray] | None = None) -> dict:
    """All threshold facts of one set of OOF scores: {oof, per_fold, stable_threshold, nested}.

    refit: the procedure that made the scores, re-run without each fold (see `nested_score`); by default
    only the threshold is nested.
    """
    return {"oof": summarize(y, scores), "per_fold": fold_thresholds(y, scores, fold),
            "stable_threshold": stable_threshold(y, scores, fold),
            "nested": nested_score(F1, y, scores if refit is None else refit, fold)}


# ---- the metric a competition names -------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """A competition metric: how scores become a number, and whether a threshold is tuned first.

    best(y, scores) -> (value, threshold): the metric with every choice made on those rows (the threshold
    tuned there, or None for a metric of probabilities); at(y, scores, threshold) -> the value at a
    given threshold. A thresholded metric submits 0/1 labels (scores >= threshold); the others submit
    the probabilities.
    """
    name: str
    label: str                          # how tables name it
    greater_is_better: bool
    thresholded: bool
    best: Callable[[np.ndarray, np.ndarray], tuple[float, float | None]]
    at: Callable[[np.ndarray, np.ndarray, float | None], float]

    def oof(self, y, scores) -> tuple[float, float | None]:
        """(value, threshold) with every choice made on the same rows: optimistic for a thresholded metric."""
        value, threshold = self.best(y, scores)
        return float(value), threshold

    def choose(self, y, scores) -> float | None:
        return self.best(y, scores)[1] if self.thresholded else None

    def ranking_key(self, value: float) -> float:
        """Sorts best first."""
        return -value if self.greater_is_better else value

    def submitted(self, scores: np.ndarray, threshold: float | None) -> np.ndarray:
        """What a submission holds for these test scores: 0/1 labels, or the probabilities."""
        scores = np.asarray(scores)
        return (scores >= threshold).astype(np.int64) if self.thresholded else scores


def _auc(y, scores, threshold=None) -> float:
    from sklearn.metrics import roc_auc_score
    y = np.asarray(y)
    return float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else float("nan")


def _log_loss(y, scores, threshold=None) -> float:
    from sklearn.metrics import log_loss
    return float(log_loss(np.asarray(y), np.clip(np.asarray(scores, np.float64), 1e-7, 1 - 1e-7), labels=[0, 1]))


F1 = Metric("f1", "F1", True, True, lambda y, s: best_threshold(y, s)[::-1], f1_at)
ROC_AUC = Metric("roc_auc", "AUC", True, False, lambda y, s: (_auc(y, s), None), _auc)
LOG_LOSS = Metric("log_loss", "log loss", False, False, lambda y, s: (_log_loss(y, s), None), _log_loss)
METRICS = {m.name: m for m in (F1, ROC_AUC, LOG_LOSS)}


def metric_named(name: str) -> Metric:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
    return METRICS[name]

