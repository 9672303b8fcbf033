"""Blends of the models' out-of-fold predictions: ensembles/<blend>/ from a [blends.NAME] table.

    python -m ensembles.blend --blend NAME          (FORCE=1 replaces a blend made from another spec)

Methods (every one is a `fit(P, y, fold, metric) -> Fitted` on a member-score matrix P, rows x members):
  mean       the plain mean of the members' probabilities.
  rank_mean  the mean of each member's rank, as its empirical CDF over the OOF rows it was fitted on
             (mid-ranks, in [0, 1]); new scores are placed in that rank space by linear interpolation
             between the OOF scores, so `test.npy >= threshold` means what it means on the OOF rows.
  weighted   non-negative weights summing to 1, fitted by SLSQP on the OOF log loss of the weighted mean.
  stacking   logistic regression on the members' logits, one per fold, each fitted on the other folds, so
             the stacked OOF stays out-of-fold; new rows get the mean of the fold models' probabilities
             (like the members' own test.npy: a mean over fold models, never a refit on all rows).
  caruana    greedy forward selection with replacement (Caruana et al. 2004): start empty, add the member
             that most improves the competition's metric on OOF (F1: at its best threshold) of the running
             mean, ROUNDS times, keep the best prefix; weights = how often each member was picked.

For F1 the threshold is the exact best-F1 threshold of the blend's float32 OOF scores (core.metrics). Every
choice made on OOF rows (weights, selection, stacker, threshold) is also estimated honestly by nested CV: for
each fold, the whole fit runs on the other folds' rows and the held-out fold is scored with it
(core.metrics.nested_score). metrics.json (core.results' schema) reports both, and is written last: it is
the "done" marker.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from core.artifacts import file_fingerprint, read_json, write_bytes, write_json, write_npy
from core.claim import claim
from core.cli import entry_point
from core.config import BlendSpec, runs_here
from core.data import Split, load_competition, texts_fingerprint
from core.errors import PipelineError
from core.metrics import f1_curve, metric_named, nested_score, summarize
from core.records import run_record, utc_now
from core.results import Result, damaged, read_result, score_section
from core.run import Run
from folds.make_folds import folds_fingerprint, load_folds
from models.plan import planned_models

ROUNDS = 20                 # caruana: selection rounds (with replacement); the best prefix is kept
STACKING_C = 1.0            # stacking: inverse L2 strength; a few features and many rows, so it barely matters
EPS = 1e-6                  # probabilities are clipped to [EPS, 1 - EPS] before logits and log loss
SETTINGS = {"caruana_rounds": ROUNDS, "stacking_C": STACKING_C, "clip": EPS}


@dataclass(frozen=True)
class Fitted:
    """A blend fitted on some rows: their scores (out-of-fold where the method learns across folds),
    a function scoring new rows' member matrix, and the parameters weights.json records."""
    oof: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]
    params: dict


# ---- the methods -----------------------------------------------------------------------------------------

def _linear(P: np.ndarray, weights: np.ndarray, params: dict) -> Fitted:
    w = np.asarray(weights, dtype=np.float64)
    return Fitted(P @ w, lambda X: X @ w, {"weights": w.tolist(), **params})


def fit_mean(P, y, fold, metric) -> Fitted:
    m = P.shape[1]
    return _linear(P, np.full(m, 1 / m), {})


def _rank_space(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct reference scores and their mid-rank ECDF values: the knots of the rank transform."""
    values, counts = np.unique(reference, return_counts=True)
    below = np.cumsum(counts) - counts
    return values, (below + counts / 2) / len(reference)


def fit_rank_mean(P, y, fold, metric) -> Fitted:
    knots = [_rank_space(P[:, j]) for j in range(P.shape[1])]

    def predict(X):
        return np.mean([np.interp(X[:, j], v, r) for j, (v, r) in enumerate(knots)], axis=0)

    return Fitted(predict(P), predict, {"weights": [1 / P.shape[1]] * P.shape[1],
                                        "score_space": "mean of each member's mid-rank ECDF over the fitted "
                                                       "OOF rows; new scores interpolated into it"})


def _log_loss_and_grad(w, P, y):
    p = np.clip(P @ w, EPS, 1 - EPS)
    dp = np.where(y, -1 / p, 1 / (1 - p)) / len(y)
    return -np.mean(np.where(y, np.log(p), np.log(1 - p))), P.T @ dp


def fit_weighted(P, y, fold, metric) -> Fitted:
    m = P.shape[1]
    result = minimize(_log_loss_and_grad, np.full(m, 1 / m), args=(P, y.astype(bool)), jac=True,
                      method="SLSQP", bounds=[(0, 1)] * m,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(m)}],
                      options={"ftol": 1e-10, "maxiter": 200})
    w = np.clip(result.x, 0, None)                     # SLSQP may leave -1e-17; keep the contract exact
    return _linear(P, w / w.sum(), {"log_loss": float(result.fun), "optimizer": result.message})


def _logits(P: np.ndarray) -> np.ndarray:
    p = np.clip(P, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _fit_lr(X, y) -> LogisticRegression:
    if len(np.unique(y)) < 2:
        raise PipelineError("stacking: a fold's training rows hold only one class; use fewer folds or more rows")
    # newton-cholesky: exact and fast for a handful of features (lbfgs was ~8x slower here)
    return LogisticRegression(C=STACKING_C, solver="newton-cholesky", max_iter=100).fit(X, y)


def fit_stacking(P, y, fold, metric) -> Fitted:
    X = _logits(P)
    ids = np.unique(fold)
    if len(ids) < 2:                                   # one fold (nested CV with k=2): nothing to hold out
        models, oof = [_fit_lr(X, y)], None
    else:
        models, oof = [], np.empty(len(y))
        for k in ids:
            model = _fit_lr(X[fold != k], y[fold != k])
            oof[fold == k] = model.predict_proba(X[fold == k])[:, 1]
            models.append(model)

    def predict(Xnew):
        return np.mean([mdl.predict_proba(_logits(Xnew))[:, 1] for mdl in models], axis=0)

    params = {"weights": np.mean([mdl.coef_[0] for mdl in models], axis=0).tolist(),
              "fold_models": [{"coef": mdl.coef_[0].tolist(), "intercept": float(mdl.intercept_[0])}
                              for mdl in models],
              "test": "mean of the fold models' probabilities", "in_sample_oof": oof is None}
    return Fitted(predict(P) if oof is None else oof, predict, params)


def fit_caruana(P, y, fold, metric) -> Fitted:
    total, picks, scores = np.zeros(len(y)), [], []
    for r in range(ROUNDS):
        candidates = [metric.ranking_key(metric.oof(y, ((total + P[:, j]) / (r + 1)).astype(np.float32))[0])
                      for j in range(P.shape[1])]
        j = int(np.argmin(candidates))                 # ties: the first member listed
        total += P[:, j]
        picks.append(j)
        scores.append(metric.ranking_key(candidates[j]))
    keep = int(np.argmin([metric.ranking_key(v) for v in scores])) + 1   # the shortest prefix reaching the best
    counts = np.bincount(picks[:keep], minlength=P.shape[1])
    return _linear(P, counts / keep, {"picks": picks[:keep], "f1_by_round": scores, "rounds": ROUNDS})


METHODS: dict[str, Callable[..., Fitted]] = {"mean": fit_mean, "rank_mean": fit_rank_mean,
                                             "weighted": fit_weighted, "stacking": fit_stacking,
                                             "caruana": fit_caruana}


def restore(method: str, params: dict, P: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A fitted blend's `predict` again, from what weights.json records (and, for rank_mean, the members' OOF
    scores its rank space is made of): a new test set is scored without fitting anything anew."""
    if method == "stacking":
        models = [(np.asarray(m["coef"]), float(m["intercept"])) for m in params["fold_models"]]
        return lambda X: np.mean([1 / (1 + np.exp(-(_logits(X) @ coef + b))) for coef, b in models], axis=0)
    if method == "rank_mean":
        return fit_rank_mean(P, None, None, None).predict
    weights = np.asarray(params["weights"], dtype=np.float64)
    return lambda X: X @ weights


# ---- members ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Members:
    names: tuple[str, ...]
    oof: np.ndarray               # (n_train, members) float64
    test: np.ndarray              # (n_test, members) float64
    folds_fingerprint: str
    test_fingerprint: str         # the test set they all predict: the competition's
    oof_prints: dict              # member -> fingerprint of its oof.npy: what a fit depends on
    test_prints: dict             # member -> fingerprint of its test.npy: what the blend's test.npy depends on


def members_here(run: Run, spec: BlendSpec) -> BlendSpec:
    """The blend with the members that run here: one that needs a GPU is left out on a machine without one, and
    one the run's plan left out (models/plan.json: over the budget) too, so one blend serves every machine; a
    disabled one is refused. (core.config checked the method and that the members exist when it loaded.)"""
    cfg = run.config
    disabled = [m for m in spec.members if cfg.model(m).enabled is False]
    if disabled:
        raise PipelineError(f"{cfg.path}: [blends.{spec.name}] uses disabled model(s) {', '.join(disabled)}; "
                            f"enable them (and `make train`) or drop them from the blend's members")
    plan = planned_models(run)
    kept = tuple(m for m in spec.members if runs_here(cfg.model(m), run.gpu) and (plan is None or m in plan))
    if plan is not None and (left := [m for m in spec.members if m not in kept]):
        print(f"blend {spec.name}: without {', '.join(left)} (not in this run's plan, models/plan.json)", flush=True)
    return dataclasses.replace(spec, members=kept)



def load_members(run: Run, spec: BlendSpec, train: Split, test: Split) -> Members:
    missing = [m for m in spec.members if not (run.model_dir(m) / "metrics.json").exists()]
    if missing:
        raise PipelineError(f"blend {spec.name}: no finished training for model(s) {', '.join(missing)} "
                            f"({run.model_dir(missing[0]) / 'metrics.json'} missing); run `make train` first")
    results = [read_result(run, "model", m) for m in spec.members]
    fingerprint = _shared_fingerprint(run, spec, results)
    oof = np.stack([r.scores("oof", len(train)) for r in results], axis=1)
    test_scores = np.stack([r.test_scores(test) for r in results], axis=1)
    prints = {split: {m: file_fingerprint(run.model_dir(m) / f"{split}.npy") for m in spec.members}
              for split in ("oof", "test")}
    return Members(tuple(spec.members), oof, test_scores, fingerprint, texts_fingerprint(test.texts),
                   prints["oof"], prints["test"])


def _shared_fingerprint(run: Run, spec: BlendSpec, results: list[Result]) -> str:
    """The members' common folds fingerprint, which must also be today's folds/folds.csv."""
    by_print: dict[str, list[str]] = {}
    for r in results:
        by_print.setdefault(str(r.metrics.get("folds_fingerprint")), []).append(r.name)
    if len(by_print) > 1:
        groups = "; ".join(f"{', '.join(names)} on folds {fp}" for fp, names in by_print.items())
        raise PipelineError(f"blend {spec.name}: its members were trained on different folds ({groups}), so "
                            f"their OOF predictions cannot be blended; retrain the stale ones with "
                            f"`make clean-model MODEL=name` then `make train`")
    (fingerprint, names), = by_print.items()
    current = folds_fingerprint(run)
    if fingerprint != current:
        raise PipelineError(f"blend {spec.name}: model(s) {', '.join(names)} were trained on folds {fingerprint}, "
                            f"but folds/folds.csv is now {current}; retrain them with `make train`")
    return fingerprint


# ---- estimates ----------------------------------------------------------------------------------------------

def nested_scores(fit, P: np.ndarray, y: np.ndarray, fold: np.ndarray, held_out: int, metric) -> np.ndarray:
    """Every row's float32 score from the blend fitted without fold `held_out`'s labels: the other folds'
    rows get the fit's own OOF scores (the threshold is chosen on them), the held-out rows its prediction."""
    inner = fold != held_out
    fitted = fit(P[inner], y[inner], fold[inner], metric)
    out = np.empty(len(y), dtype=np.float32)
    out[inner] = fitted.oof
    out[~inner] = fitted.predict(P[~inner])
    return out


def member_scores(members: Members, y: np.ndarray, fold: np.ndarray, metric) -> dict:
    """Each member alone, measured like the blend (choices made on OOF; nested over folds)."""
    out = {}
    for j, name in enumerate(members.names):
        s = members.oof[:, j].astype(np.float32)
        oof = summarize(y, s)
        value, threshold = metric.oof(y, s)
        out[name] = {"oof_score": value, "threshold": threshold, "auc": oof["auc"], "log_loss": oof["log_loss"],
                     "nested_score": nested_score(metric, y, s, fold)["score"]}
    return out


def blend_metrics(spec: BlendSpec, members: Members, fitted: Fitted, y, fold, test32, metric) -> dict:
    fit = METHODS[spec.method]
    scoring = score_section(metric, y, fitted.oof, fold,
                            refit=lambda k: nested_scores(fit, members.oof, y, fold, k, metric))
    return {**identity(spec, members, metric), "blend": spec.name, "method": spec.method,
            "members": list(members.names), **scoring,
            "score_space": "rank" if spec.method == "rank_mean" else "probability",   # rank: log loss means little
            "member_scores": member_scores(members, y, fold, metric),
            **test_section(members, test32, scoring["threshold"])}


def test_section(members: Members, test32: np.ndarray, threshold: float | None) -> dict:
    """What metrics.json says of the blend's test predictions: the test set and member predictions they come
    from, and how many are positive at the threshold."""
    return {"test_fingerprint": members.test_fingerprint, "member_tests": members.test_prints,
            "test": {"n": int(len(test32)),
                     "predicted_positive": None if threshold is None else int((test32 >= threshold).sum())}}


# ---- artifacts ----------------------------------------------------------------------------------------------

def identity(spec: BlendSpec, members: Members, metric) -> dict:
    """What a finished blend's fit was made from; the same identity means the same fit. (Its test predictions
    follow the members' test predictions: a new test set is scored with the fit it has.)"""
    return {"spec": {"name": spec.name, "method": spec.method, "members": list(spec.members),
                     "settings": SETTINGS},
            "folds_fingerprint": members.folds_fingerprint, "metric": metric.name, "member_oof": members.oof_prints}


def plot_curves(folder, y, curves: dict[str, np.ndarray], threshold: float | None) -> list[str]:
    """F1 against threshold and precision-recall, for the blend and each member: PNGs in the blend folder."""
    import matplotlib
    matplotlib.use("Agg")                              # no display: files only
    import matplotlib.pyplot as plt

    figures = {name: plt.subplots(figsize=(7, 5)) for name in ("f1_threshold.png", "precision_recall.png")}
    (_, ax_f1), (_, ax_pr) = figures.values()
    for name, scores in curves.items():
        c = f1_curve(y, scores)
        keep = np.unique(np.linspace(0, len(c["f1"]) - 1, 2000).astype(int))   # a million points draw no better
        ax_f1.plot(c["threshold"][keep], c["f1"][keep], label=name)
        ax_pr.plot(c["recall"][keep], c["precision"][keep], label=name)
    if threshold is not None:
        ax_f1.axvline(threshold, color="grey", linestyle="--", label=f"blend threshold {threshold:.4g}")
    blend = folder.name
    ax_f1.set(xlabel="threshold (score >= t is positive)", ylabel="F1", title=f"{blend}: OOF F1 by threshold")
    ax_pr.set(xlabel="recall", ylabel="precision", title=f"{blend}: OOF precision-recall")
    for name, (fig, ax) in figures.items():
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        write_bytes(folder / name, buf.getvalue())
    return list(figures)


def run_blend(run: Run, name: str) -> dict:
    """Fit, evaluate and write one blend; returns its metrics (the existing ones when up to date).

    A blend made from another spec or folds is refused unless FORCE=1; one whose members were merely
    retrained, or scored by another metric, is rebuilt (it is derived from them)."""
    cfg = run.config
    spec, metric = members_here(run, cfg.blend(name)), cfg.metric
    train, test = load_competition(run)
    y, fold = train.target.astype(np.int64), load_folds(run, train)
    members = load_members(run, spec, train, test)
    folder = run.ensemble_dir(name)
    # member_artifacts, test_fingerprint: what blends of an earlier version were stamped with
    if not claim(folder, identity(spec, members, metric), "metrics.json", f"Restore its [blends.{name}] table",
                 run.force, derived=("member_oof", "metric", "member_artifacts", "test_fingerprint")):
        if not (why := damaged("blend", folder, len(train), test, ("weights.json",))):
            metrics = read_json(folder / "metrics.json")
            if (metrics.get("test_fingerprint"), metrics.get("member_tests")) == (members.test_fingerprint,
                                                                                   members.test_prints):
                return metrics
            return predict_test(folder, spec, members, metrics)
        print(f"{folder}: {why}; fitting it again", flush=True)
    start, started = time.time(), utc_now()
    fitted = METHODS[spec.method](members.oof, y, fold, metric)
    test32 = np.asarray(fitted.predict(members.test), dtype=np.float32)
    metrics = blend_metrics(spec, members, fitted, y, fold, test32, metric)
    write_npy(folder / "oof.npy", fitted.oof.astype(np.float32))
    write_npy(folder / "test.npy", test32)
    write_json(folder / "weights.json", {"blend": name, "method": spec.method, "members": list(members.names),
                                         "by_member": dict(zip(members.names, fitted.params["weights"])),
                                         **fitted.params})
    curves = {f"{name} (blend)": fitted.oof.astype(np.float32),
              **{m: members.oof[:, j] for j, m in enumerate(members.names)}}
    metrics["plots"] = plot_curves(folder, y, curves, metrics["threshold"])
    metrics["wall_seconds"] = round(time.time() - start, 2)
    metrics["run"] = run_record(cfg, {f"blends.{name}": asdict(spec)}, "CPU", started)  # numpy only
    write_json(folder / "metrics.json", metrics)           # last: the "done" marker
    return metrics


def predict_test(folder, spec: BlendSpec, members: Members, metrics: dict) -> dict:
    """A finished blend's test predictions from its members' new ones, with the fit it has (weights, stacker,
    threshold): a new test set scored, nothing fitted anew."""
    start = time.time()
    params = read_json(folder / "weights.json", "fit the blend again: make ensemble")
    test32 = np.asarray(restore(spec.method, params, members.oof)(members.test), dtype=np.float32)
    write_npy(folder / "test.npy", test32)
    metrics = {**metrics, **test_section(members, test32, metrics["threshold"]),
               "predict_seconds": round(time.time() - start, 2)}
    write_json(folder / "metrics.json", metrics)           # last: the "done" marker
    print(f"{folder}: the members' new test predictions scored with the blend's fit", flush=True)
    return metrics


SIMPLER_FIRST = ("mean", "rank_mean", "weighted", "caruana", "stacking")   # ties go to the earlier
TIE = 1e-4                  # nested scores closer than this are a tie


def chosen(run: Run) -> tuple[str, str]:
    """The blend the pipeline sends and why: [ensemble] default where the configuration names one, else the
    finished blend with the best nested score (ties, within TIE, to the simpler method)."""
    cfg = run.config
    if cfg.default_blend:
        return cfg.default_blend, "[ensemble] default names it"
    finished = [read_result(run, "blend", b.name) for b in cfg.blends.values()
                if b.enabled and (run.ensemble_dir(b.name) / "metrics.json").exists()]
    if not finished:
        raise PipelineError(f"{cfg.path}: no blend is finished, so none can be chosen to send; run `make ensemble`, "
                            f"or name one in [ensemble] default")
    metric = cfg.metric
    best = min(metric.ranking_key(r.nested_score) for r in finished)
    tied = [r for r in finished if metric.ranking_key(r.nested_score) <= best + TIE]
    pick = min(tied, key=lambda r: SIMPLER_FIRST.index(r.metrics["method"]))
    others = sorted((r for r in finished if r is not pick), key=lambda r: metric.ranking_key(r.nested_score))
    return pick.name, (f"the best nested {metric.label} of the blends: {pick.nested_score:.4f}"
                       + (f" (tied within {TIE:g}: the simpler method)" if len(tied) > 1 else "")
                       + "".join(f"; {r.name} {r.nested_score:.4f}" for r in others))


def report(m: dict) -> str:
    label = metric_named(m["metric"]).label
    best = min(m["member_scores"].items(),
               key=lambda kv: metric_named(m["metric"]).ranking_key(kv[1]["nested_score"]))
    at = "" if m["threshold"] is None else f" at threshold {m['threshold']:.6g}"
    stable = f"; stable threshold {m['stable_threshold']['threshold']:.6g}" if "stable_threshold" in m else ""
    return (f"blend {m['blend']} ({m['method']} of {', '.join(m['members'])}): "
            f"OOF {label} {m['score']['oof']:.4f}{at}, nested {label} {m['score']['nested']:.4f} "
            f"± {m['score']['nested_std']:.4f}; best member {best[0]}: OOF {label} {best[1]['oof_score']:.4f}, "
            f"nested {best[1]['nested_score']:.4f}{stable}")


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Blend the models' OOF predictions into ensembles/<blend>/")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--blend", help="a [blends.NAME] table of the configuration")
    which.add_argument("--chosen", action="store_true", help="print the blend the pipeline sends (make submit)")
    args = parser.parse_args(argv)
    run = Run.from_environment()
    print(chosen(run)[0] if args.chosen else report(run_blend(run, args.blend)))


if __name__ == "__main__":
    main()
