"""The exact threshold search and the rules built on it (core.metrics), checked against brute force."""
import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score

from core.metrics import (F1, best_threshold, f1_at, f1_curve, fold_thresholds, nested_score, stable_threshold,
                          summarize, threshold_report)


def sklearn_f1(y, predictions):
    """sklearn's F1 of each column of 0/1 predictions, in one call (one multilabel column per candidate).

    A spare all-zero column keeps the input 2-D multilabel: sklearn reads a single column as binary.
    """
    predictions = np.c_[predictions, np.zeros(len(predictions), dtype=bool)]
    truth = np.repeat(np.asarray(y).reshape(-1, 1), predictions.shape[1], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f1_score(truth, predictions.astype(int), average=None, zero_division=0)[:-1]


def brute_force(y, s):
    """sklearn's F1 at every distinct score (descending) used as 'positive where s >= cut'."""
    cuts = np.unique(s)[::-1]
    return cuts, sklearn_f1(y, s.reshape(-1, 1) >= cuts.reshape(1, -1))


def random_case(rng):
    n = int(rng.integers(1, 16))
    rate = rng.choice([0.0, 0.1, 0.3, 0.5, 1.0])
    y = (rng.random(n) < rate).astype(int)
    levels = int(rng.integers(1, 6)) if rng.random() < 0.5 else 1000      # few levels -> many tied scores
    s = np.round(rng.random(n) * levels) / levels
    return y, s.astype(rng.choice([np.float32, np.float64]))


def test_best_threshold_equals_brute_force_on_1000_random_cases():
    rng = np.random.default_rng(0)
    for case in range(1000):
        y, s = random_case(rng)
        threshold, f1 = best_threshold(y, s)
        cuts, brute = brute_force(y, s)
        assert f1 == pytest.approx(brute.max(), abs=1e-12), case
        # the labels the threshold gives reach the brute-force best F1, in the scores' own dtype
        assert sklearn_f1(y, (s >= threshold).reshape(-1, 1))[0] == pytest.approx(brute.max(), abs=1e-12)
        if brute.max() > 0:
            tied = np.flatnonzero(brute >= brute.max() - 1e-12)
            j = tied[len(tied) // 2]                     # the middle of the tied cuts
            lower = cuts[j + 1] if j + 1 < len(cuts) else -np.inf
            assert lower < threshold <= cuts[j], case


def test_all_negative_labels_predict_nothing():
    s = np.array([0.1, 0.5, 0.9, 0.9])
    threshold, f1 = best_threshold(np.zeros(4), s)
    assert f1 == 0.0 and not (s >= threshold).any()


def test_all_positive_labels_predict_everything():
    s = np.array([0.1, 0.5, 0.9, 0.9], dtype=np.float32)
    threshold, f1 = best_threshold(np.ones(4), s)
    assert f1 == 1.0 and (s >= threshold).all()


def test_tied_scores_are_one_cut():
    # rows with equal scores are labelled alike, so the 0.5 pair cannot be split: best is 2/3 at 0.5 or 0.9
    y, s = np.array([1, 1, 0, 0]), np.array([0.9, 0.5, 0.5, 0.1])
    threshold, f1 = best_threshold(y, s)
    assert f1 == pytest.approx(brute_force(y, s)[1].max())
    assert f1_at(y, s, threshold) == pytest.approx(f1)


def test_threshold_is_the_centre_of_the_best_interval():
    threshold, f1 = best_threshold([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])
    assert (threshold, f1) == (pytest.approx(0.5), 1.0)


def test_ties_between_cuts_go_to_the_middle_one():
    # labels by descending score 8..1: F1 = 2/3 at cuts 7, 4 and 1; the middle is 4, its interval (3, 4]
    y = np.array([1, 1, 0, 0, 1, 0, 0, 1])
    s = np.arange(8, 0, -1, dtype=np.float64)
    threshold, f1 = best_threshold(y, s)
    assert f1 == pytest.approx(2 / 3) and threshold == 3.5


def test_float32_threshold_reproduces_labels_in_float32():
    # the float64 midpoint of neighbouring float32 scores rounds onto the lower one in float32 comparisons
    a = np.float32(1.0)
    s = np.array([np.nextafter(a, np.float32(2)), a], dtype=np.float32)
    threshold, f1 = best_threshold([1, 0], s)
    assert f1 == 1.0 and list(s >= threshold) == [True, False]
    assert f1_at([1, 0], s, threshold) == 1.0


def test_nan_scores_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        best_threshold([0, 1], [0.1, np.nan])


def test_summarize_searches_unclipped_scores():
    # 1e-8, 1e-9 and 1e-10 would all clip to 1e-7 and become one cut
    y, s = np.array([1, 0, 1, 0]), np.array([1e-8, 1e-9, 0.9, 1e-10])
    out = summarize(y, s)
    assert out["f1"] == 1.0 and f1_at(y, s, out["threshold"]) == 1.0


def test_f1_curve_matches_f1_at():
    rng = np.random.default_rng(1)
    y, s = rng.integers(0, 2, 50), np.round(rng.random(50), 1)
    curve = f1_curve(y, s)
    for t, f1 in zip(curve["threshold"], curve["f1"]):
        assert f1 == pytest.approx(f1_at(y, s, t))


def test_fold_thresholds_are_each_folds_own_best():
    rng = np.random.default_rng(2)
    y, s, fold = rng.integers(0, 2, 60), rng.random(60), np.repeat([0, 1, 2], 20)
    rows = fold_thresholds(y, s, fold)
    assert [r["fold"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert (r["threshold"], r["f1"]) == best_threshold(y[fold == r["fold"]], s[fold == r["fold"]])


def test_stable_threshold_minimises_the_largest_fold_regret():
    rng = np.random.default_rng(3)
    for _ in range(30):
        y, s, fold = rng.integers(0, 2, 40), np.round(rng.random(40), 1), rng.integers(0, 3, 40)
        out = stable_threshold(y, s, fold)
        best = {k: best_threshold(y[fold == k], s[fold == k])[1] for k in np.unique(fold)}

        def worst_regret(t):
            return max(best[k] - f1_at(y[fold == k], s[fold == k], t) for k in best)

        assert out["max_regret"] == pytest.approx(worst_regret(out["threshold"]), abs=1e-12)
        assert out["max_regret"] <= min(worst_regret(c) for c in np.unique(s)) + 1e-12


def test_nested_f1_chooses_each_threshold_on_the_other_folds():
    rng = np.random.default_rng(4)
    y, s, fold = rng.integers(0, 2, 90), rng.random(90), np.repeat([0, 1, 2], 30)
    out = nested_score(F1, y, s, fold)
    for r in out["per_fold"]:
        other = fold != r["fold"]
        assert r["threshold"] == best_threshold(y[other], s[other])[0]
        assert r["score"] == f1_at(y[~other], s[~other], r["threshold"])
    assert out["score"] == pytest.approx(np.mean([r["score"] for r in out["per_fold"]]))


def test_nested_f1_calls_a_procedure_once_per_held_out_fold():
    y, fold = np.array([1, 0, 1, 0, 1, 0]), np.array([0, 0, 1, 1, 2, 2])
    calls = []

    def scores(held_out):
        calls.append(held_out)
        return np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3])

    out = nested_score(F1, y, scores, fold)
    assert calls == [0, 1, 2] and out["score"] == 1.0 and out["pooled"] == 1.0


def test_threshold_report_has_every_rule():
    rng = np.random.default_rng(5)
    y, s, fold = rng.integers(0, 2, 60), rng.random(60), np.repeat([0, 1], 30)
    assert set(threshold_report(y, s, fold)) == {"oof", "per_fold", "stable_threshold", "nested"}
