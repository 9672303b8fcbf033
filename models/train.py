"""Train catalogue models on every fold: out-of-fold predictions for train, fold-averaged ones for test.

    python -m models.train [--model NAME ...]                  (make train: the models the plan takes)
    python -m models.train --predict-only [--model NAME ...]  (make predict: a new test set, nothing trained)

Per model, in models/<model>/: stamp.json (what it is made from), fold<k>/ (predictions, weights,
history, TensorBoard logs, done.json), then oof.npy, test.npy and, last, metrics.json (core.results'
schema). Each model kind is a class of models/kinds/; this is the one fold loop over them.
A finished fold is never trained again, so an interrupted run resumes at the first unfinished fold. A model
whose spec, module, folds or train set changed is refused until it is rebuilt (`make clean-model MODEL=x`, or
FORCE=1). A new test set is predicted by each fold's saved model, not trained for (Kaggle's stage 2): each fold
records the test set it predicted, so this too resumes fold by fold. Folds run through joblib: N_JOBS=n runs n
at once, BACKEND=dask on a Dask cluster (models/backends.py).
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import joblib
import numpy as np

from core.artifacts import read_json, write_json, write_npy
from core.claim import STAMP, claim
from core.cli import entry_point
from core.data import load_competition, texts_fingerprint
from core.errors import PipelineError
from core.metrics import f1_at, summarize
from core.records import run_record, utc_now
from core.results import SCHEMA, damaged, read_scores, score_section
from core.run import Run
from folds.make_folds import folds_fingerprint, load_folds
from models.backends import fold_backend
from models.catalogue import specs, upgrade_stamp
from models.devices import describe
from models.handles import module_fingerprint
from models.kinds import KINDS
from models.kinds.base import FoldData, Kind, ModelSpec, save_predictions
from models.plan import planned, predicted_minutes
from models.precision import check_one_precision


def stamp_for(kind: Kind) -> dict:
    """Everything a model's fold models depend on; a change in any of it means a rebuild. (The test set is not
    among them: a new one is predicted by the fold models.) Switching a model on or off is no change."""
    module = "+".join(module_fingerprint(path) for path in kind.module_paths()) or None
    return {"spec": kind.spec.stamp(), "module_fingerprint": module, "folds_fingerprint": folds_fingerprint(kind.run),
            "train_texts": texts_fingerprint(kind.train.texts)}


def fold_done(out: Path, k: int) -> bool:
    return (out / f"fold{k}" / "done.json").exists()


def fold_record(out: Path, k: int, name: str) -> dict:
    """A finished fold's done.json, checked."""
    folder = out / f"fold{k}"
    return read_json(folder / "done.json", f"retrain the fold: rm -r {folder} && make train MODELS={name}")


def run_fold(kind: Kind, fold: FoldData) -> dict:
    """Train one fold and save its predictions; runs in this process or a joblib worker."""
    if fold.folder.exists():                     # a fold killed part-way restarts from scratch
        shutil.rmtree(fold.folder)
    fold.folder.mkdir(parents=True)
    start = time.time()
    held, test, history = kind.fit_predict(fold)
    seconds = time.time() - start
    save_predictions(fold.folder, held, test, history)
    epochs = len(history.get("loss", [])) or 1
    own = summarize(kind.train.target[fold.held_rows], held)
    result = {"fold": fold.k, "epochs": epochs, "seconds": seconds, "n": len(fold.held_rows),
              "train_rows": len(fold.fit_rows), "own_f1": own["f1"], "own_threshold": own["threshold"],
              "precision": kind.device()["precision"], "test_fingerprint": texts_fingerprint(kind.test.texts)}
    write_json(fold.folder / "done.json", result)
    print(f"{fold.label}: F1 {result['own_f1']:.4f} at its own best threshold, {epochs} epoch(s), "
          f"{seconds:.0f} s", flush=True)
    return result


def predict_fold(kind: Kind, fold: FoldData) -> None:
    """A finished fold's prediction of the competition's test set by its saved model: its test.npy (atomically),
    then the test set done.json records (so a kill in between predicts it again)."""
    start = time.time()
    write_npy(fold.folder / "test.npy", np.asarray(kind.predict_test(fold), dtype=np.float32))
    record = fold_record(fold.folder.parent, fold.k, kind.spec.name)
    write_json(fold.folder / "done.json", {**record, "test_fingerprint": texts_fingerprint(kind.test.texts)})
    print(f"{fold.label}: the new test set predicted by its saved model, {time.time() - start:.0f} s", flush=True)


def run_of(kind: Kind, devices, started: str | None) -> dict:
    """The run record (core.records); started None: re-scoring folds whose training run kept no record."""
    record = run_record(kind.run.config, {f"models.{kind.spec.name}": kind.spec.as_dict()}, devices,
                        started or utc_now())
    return record if started else {**record, "note": "re-scored; the run that trained it kept no record"}


def assemble(kind: Kind, out: Path, fold: np.ndarray, stamp: dict, extra: dict, run: dict) -> dict:
    """oof.npy, test.npy and metrics.json (last: it is the 'done' marker) from the finished folds."""
    spec, y = kind.spec, kind.train.target
    k = int(fold.max()) + 1
    oof = np.full(len(y), np.nan, dtype=np.float32)
    test = []
    folds = [fold_record(out, f, spec.name) for f in range(k)]
    for f in range(k):
        fix = f"retrain the fold: rm -r {out / f'fold{f}'} && make train MODELS={spec.name}"
        oof[fold == f] = read_scores(out / f"fold{f}" / "oof.npy", int((fold == f).sum()), fix)
        test.append(read_scores(out / f"fold{f}" / "test.npy", len(kind.test), fix).astype(np.float32))
    if np.isnan(oof).any():
        raise PipelineError(f"{out}: {np.isnan(oof).sum()} out-of-fold rows were not predicted")
    scoring = score_section(kind.run.config.metric, y, oof, fold)
    for f, result in enumerate(folds):
        rows = fold == f
        result.update({key: v for key, v in summarize(y[rows], oof[rows]).items()
                       if key in ("auc", "log_loss", "positives")},
                      f1=f1_at(y[rows], oof[rows], scoring["oof"]["threshold"]))
    seconds = sum(r["seconds"] for r in folds)
    examples = sum(r["train_rows"] * r["epochs"] for r in folds)
    wall = seconds + extra.get("embed_seconds", 0.0)
    metrics = {"model": spec.name, "spec": spec.as_dict(), "stamp": stamp, "k": k,
               "folds_fingerprint": stamp["folds_fingerprint"], "test_fingerprint": texts_fingerprint(kind.test.texts),
               **scoring, "folds": folds, "wall_seconds": wall,
               "minutes": {"predicted": predicted_minutes(kind.run, spec.name), "actual": wall / 60},
               "examples_per_second": examples / seconds if seconds else float("nan"), **extra, "run": run}
    write_npy(out / "oof.npy", oof)
    write_npy(out / "test.npy", np.mean(test, axis=0).astype(np.float32))
    write_json(out / "metrics.json", metrics)
    return metrics


def earlier_test_set(out: Path) -> str | None:
    """The test set a stamp from before folds recorded theirs names (its `test_texts`): what those folds
    predicted. None when there is no such stamp."""
    try:
        return read_json(out / STAMP).get("test_texts") if (out / STAMP).exists() else None
    except PipelineError:
        return None


def train_model(run: Run, spec: ModelSpec, predict_only: bool = False) -> dict | None:
    """Every unfinished fold of one model, the test set predicted by every fold that predicted another, then its
    artifacts; None when it was up to date. predict_only: a fold left to train is refused, not trained."""
    cfg, out = run.config, run.model_dir(spec.name)
    train, test = load_competition(run)
    fold = load_folds(run, train)
    kind = KINDS[spec.kind](spec, run, train, test)
    stamp, test_set, earlier = stamp_for(kind), texts_fingerprint(test.texts), earlier_test_set(out)
    finished = not claim(out, stamp, "metrics.json", f"Rebuild it with `make clean-model MODEL={spec.name}`",
                         run.force, upgrade=lambda old: upgrade_stamp(old, cfg))
    if finished and (why := damaged("model", out, len(train), test)):
        print(f"{out}: {why}; assembling it again from its folds", flush=True)
        (out / "metrics.json").unlink()          # unfinished again: it resumes below
        finished = False
    metrics = read_json(out / "metrics.json") if finished else {}
    todo = [k for k in range(cfg.folds.k) if not fold_done(out, k)]
    stale = [k for k in range(cfg.folds.k) if k not in todo
             and fold_record(out, k, spec.name).get("test_fingerprint", earlier) != test_set]
    if finished and not stale:
        if (metrics.get("schema"), metrics.get("metric")) != (SCHEMA, cfg.metric.name):
            # the same predictions, scored by an older version or another metric: rescored, not retrained
            assemble(kind, out, fold, stamp, _kept(metrics), metrics.get("run") or run_of(kind, metrics.get("devices"),
                                                                                         None))
        return None
    if todo and predict_only:
        raise PipelineError(f"{out}: folds {todo} are not trained; `make predict` only predicts with finished "
                            f"models: `make train MODELS={spec.name}` trains them")
    started, device = utc_now(), kind.device()
    jobs = {k: FoldData(k, np.flatnonzero(fold != k), np.flatnonzero(fold == k), out / f"fold{k}",
                        f"{spec.name} fold {k}") for k in range(cfg.folds.k)}
    if todo:
        print(f"{spec.name}: {kind.description} on {describe(device)}", flush=True)
        extra = {**_kept(metrics), "path": spec.kind, "devices": device, **kind.prepare()}
        if len(todo) < cfg.folds.k:
            check_one_precision({k: fold_record(out, k, spec.name).get("precision", "float32")
                                 for k in range(cfg.folds.k) if k not in todo}, device["precision"], out, spec.name)
            print(f"{spec.name}: resuming, folds {todo} left of {cfg.folds.k}", flush=True)
        joblib.Parallel(n_jobs=run.n_jobs)(joblib.delayed(run_fold)(kind, jobs[k]) for k in todo)
        run = run_of(kind, device, started)
    else:
        extra, run = {**_kept(metrics), "path": spec.kind}, metrics.get("run") or run_of(kind, device, started)
    if stale:
        print(f"{spec.name}: the test set changed; its saved models of folds {stale} predict it", flush=True)
        start = time.time()
        kind.prepare(("test",))                  # the new texts' caches, where the kind reads any
        for k in stale:
            predict_fold(kind, jobs[k])
        extra["predict_seconds"] = time.time() - start
    metrics = assemble(kind, out, fold, stamp, extra, run)
    score = metrics["score"]
    print(f"{spec.name}: OOF {cfg.metric.label} {score['oof']:.4f}, nested {score['nested']:.4f}"
          f"{_at(metrics['threshold'])}, AUC {metrics['oof']['auc']:.4f}, {metrics['wall_seconds']:.0f} s", flush=True)
    return metrics


def _kept(metrics: dict) -> dict:
    """What a model's metrics.json says of its training that re-scoring or re-predicting keeps."""
    return {k: metrics[k] for k in ("path", "devices", "embed_seconds", "module_layers", "trainable_layers")
            if k in metrics}


def _at(threshold: float | None) -> str:
    return "" if threshold is None else f" at threshold {threshold:.3f}"


def train_models(run: Run, names: list[str] | None = None, predict_only: bool = False) -> dict:
    """The named models (None: those the run's plan takes, models.plan), their folds run on the run's backend
    (models.backends: loky, dask), then the training-curves figure; {model: its metrics, or None when it was up to
    date}. predict_only: only a new test set predicted, nothing trained (a model with folds left to train is
    refused)."""
    chosen = specs(run, names or planned(run)["taken"])
    with fold_backend(run):
        done = {spec.name: train_model(run, spec, predict_only) for spec in chosen}
    from models.curves import plot_training_curves
    plot_training_curves(run)
    return done


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a catalogue name (repeatable); default: the plan's models")
    parser.add_argument("--predict-only", action="store_true",
                        help="only predict a new test set with the finished models' fold models; train nothing")
    args = parser.parse_args(argv)
    train_models(Run.from_environment(), args.model, args.predict_only)


if __name__ == "__main__":
    main()
