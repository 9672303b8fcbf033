"""Train catalogue models on every fold: out-of-fold predictions for train, fold-averaged ones for test.

    python -m models.train --model NAME [--model NAME ...]     (make train: every enabled model)

Per model, in models/<model>/: stamp.json (what it is made from), fold<k>/ (predictions, weights,
history, TensorBoard logs, done.json), then oof.npy, test.npy and, last, metrics.json (core.results'
schema). Each training path is a class of models/trainers.py; this is the one fold loop over them.
A finished fold is never trained again, so an interrupted run resumes at the first unfinished
fold. A model whose spec, module, folds or data changed is refused until it is rebuilt
(`make clean-model MODEL=x`, or FORCE=1). Folds run through joblib: N_JOBS=n runs n at once, BACKEND=dask on a Dask cluster
(models/backends.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from pathlib import Path

import joblib
import numpy as np

from core.artifacts import read_json, write_json, write_npy
from core.claim import claim
from core.cli import entry_point
from core.config import Config, ModelSpec, load_config
from core.data import load_competition, texts_fingerprint
from core.errors import PipelineError
from core.metrics import f1_at, summarize
from core.paths import model_dir
from core.records import run_record, utc_now
from core.results import SCHEMA, damaged, read_scores, score_section
from folds.make_folds import folds_fingerprint, load_folds
from models.backends import FoldJob, fold_backend
from models.devices import describe
from models.precision import check_one_precision
from models.handles import module_fingerprint
from models.trainer_base import FoldData, Trainer, save_predictions
from models.trainers import trainer_for


LATER_OPTIONS = ("seeds", "trainable_layers", "token_precision",   # model options added after the first stamps
                 "token_head", "rnn_units", "rnn_layers")


def stamp_for(trainer: Trainer) -> dict:
    """Everything a model's predictions depend on; a change in any of it means a rebuild."""
    spec = trainer.spec
    module = "+".join(module_fingerprint(path) for path in trainer.module_paths()) or None
    # Switching a model on/off is no change; nor is an option added later at its default, the behaviour
    # from before it existed (so models trained before it stay up to date).
    defaults = {f.name: f.default for f in dataclasses.fields(ModelSpec)}
    spec_dict = {k: v for k, v in spec.as_dict().items()
                 if k != "enabled" and not (k in LATER_OPTIONS and v == defaults[k])}
    return {"spec": spec_dict, "module_fingerprint": module, "folds_fingerprint": folds_fingerprint(),
            "train_texts": texts_fingerprint(trainer.train.texts), "test_texts": texts_fingerprint(trainer.test.texts)}


def fold_done(out: Path, k: int) -> bool:
    return (out / f"fold{k}" / "done.json").exists()


def run_fold(trainer: Trainer, fold: FoldData) -> dict:
    """Train one fold and save its predictions; runs in this process or a joblib worker."""
    if fold.folder.exists():                     # a fold killed part-way restarts from scratch
        shutil.rmtree(fold.folder)
    fold.folder.mkdir(parents=True)
    start = time.time()
    held, test, history = trainer.fit_predict(fold)
    seconds = time.time() - start
    save_predictions(fold.folder, held, test, history)
    epochs = len(history.get("loss", [])) or 1
    own = summarize(trainer.train.target[fold.held_rows], held)
    result = {"fold": fold.k, "epochs": epochs, "seconds": seconds, "n": len(fold.held_rows),
              "train_rows": len(fold.fit_rows), "own_f1": own["f1"], "own_threshold": own["threshold"],
              "precision": trainer.device()["precision"]}
    write_json(fold.folder / "done.json", result)
    print(f"{fold.label}: F1 {result['own_f1']:.4f} at its own best threshold, {epochs} epoch(s), "
          f"{seconds:.0f} s", flush=True)
    return result


def fold_record(out: Path, k: int, name: str) -> dict:
    """A finished fold's done.json, checked."""
    folder = out / f"fold{k}"
    return read_json(folder / "done.json", f"retrain the fold: rm -r {folder} && make train MODELS={name}")


def run_of(trainer: Trainer, devices, started: str | None) -> dict:
    """The run record (core.records); started None: re-scoring folds whose training run kept no record."""
    spec = trainer.spec
    record = run_record(trainer.cfg, {f"models.{spec.name}": spec.as_dict()}, devices, started or utc_now())
    return record if started else {**record, "note": "re-scored; the run that trained it kept no record"}


def assemble(trainer: Trainer, out: Path, fold: np.ndarray, stamp: dict, extra: dict, run: dict) -> dict:
    """oof.npy, test.npy and metrics.json (last: it is the 'done' marker) from the finished folds."""
    spec, y = trainer.spec, trainer.train.target
    k = int(fold.max()) + 1
    oof = np.full(len(y), np.nan, dtype=np.float32)
    test = []
    folds = [fold_record(out, f, spec.name) for f in range(k)]
    for f in range(k):
        fix = f"retrain the fold: rm -r {out / f'fold{f}'} && make train MODELS={spec.name}"
        oof[fold == f] = read_scores(out / f"fold{f}" / "oof.npy", int((fold == f).sum()), fix)
        test.append(read_scores(out / f"fold{f}" / "test.npy", len(trainer.test), fix))
    if np.isnan(oof).any():
        raise PipelineError(f"{out}: {np.isnan(oof).sum()} out-of-fold rows were not predicted")
    scoring = score_section(trainer.cfg.metric, y, oof, fold)
    for f, result in enumerate(folds):
        rows = fold == f
        result.update({key: v for key, v in summarize(y[rows], oof[rows]).items()
                       if key in ("auc", "log_loss", "positives")},
                      f1=f1_at(y[rows], oof[rows], scoring["oof"]["threshold"]))
    seconds = sum(r["seconds"] for r in folds)
    examples = sum(r["train_rows"] * r["epochs"] for r in folds)
    metrics = {"model": spec.name, "spec": spec.as_dict(), "stamp": stamp, "k": k,
               "folds_fingerprint": stamp["folds_fingerprint"], "test_fingerprint": stamp["test_texts"], **scoring,
               "folds": folds,
               "wall_seconds": seconds + extra.get("embed_seconds", 0.0),
               "examples_per_second": examples / seconds if seconds else float("nan"), **extra, "run": run}
    write_npy(out / "oof.npy", oof)
    write_npy(out / "test.npy", np.mean(test, axis=0).astype(np.float32))
    write_json(out / "metrics.json", metrics)
    return metrics


def train_model(spec: ModelSpec, cfg: Config, n_jobs: int) -> dict | None:
    """Every unfinished fold of one model, then its artifacts; None when it was up to date."""
    out = model_dir(spec.name)
    train, test = load_competition(cfg)
    fold = load_folds(train, cfg)
    trainer = trainer_for(spec)(spec, cfg, train, test)
    stamp = stamp_for(trainer)
    if not claim(out, stamp, "metrics.json", f"Rebuild it with `make clean-model MODEL={spec.name}`"):
        if why := damaged(out, len(train), len(test)):
            print(f"{out}: {why}; assembling it again from its folds", flush=True)
            (out / "metrics.json").unlink()          # unfinished again: the training path below resumes it
        else:
            metrics = read_json(out / "metrics.json")
            if (metrics.get("schema"), metrics.get("metric")) != (SCHEMA, cfg.metric.name):
                # the same predictions, scored by an older version or another metric: rescored, not retrained
                assemble(trainer, out, fold, stamp, {k: metrics[k] for k in ("path", "devices", "embed_seconds")
                                                     if k in metrics},
                         metrics.get("run") or run_of(trainer, metrics.get("devices"), None))
            return None
    started = utc_now()
    device = trainer.device()
    print(f"{spec.name}: {trainer.description} on {describe(device)}", flush=True)
    extra = {"path": trainer.path, "devices": device, **trainer.prepare()}
    todo = [k for k in range(cfg.folds.k) if not fold_done(out, k)]
    if len(todo) < cfg.folds.k:
        check_one_precision({k: fold_record(out, k, spec.name).get("precision", "float32")
                             for k in range(cfg.folds.k) if k not in todo}, device["precision"], out, spec.name)
        print(f"{spec.name}: resuming, folds {todo} left of {cfg.folds.k}", flush=True)
    jobs = [FoldData(k, np.flatnonzero(fold != k), np.flatnonzero(fold == k), out / f"fold{k}",
                     f"{spec.name} fold {k}") for k in todo]
    joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(FoldJob(run_fold))(trainer, job) for job in jobs)
    metrics = assemble(trainer, out, fold, stamp, extra, run_of(trainer, device, started))
    score = metrics["score"]
    print(f"{spec.name}: OOF {cfg.metric.label} {score['oof']:.4f}, nested {score['nested']:.4f}"
          f"{_at(metrics['threshold'])}, AUC {metrics['oof']['auc']:.4f}, {metrics['wall_seconds']:.0f} s", flush=True)
    return metrics


def _at(threshold: float | None) -> str:
    return "" if threshold is None else f" at threshold {threshold:.3f}"


def train_models(names: list[str] | None, cfg: Config, n_jobs: int = 1, backend: str | None = None) -> dict:
    """The named models (None: every enabled one), their folds run on `backend` (models.backends: loky, dask),
    then the training-curves figure; {model: its metrics, or None when it was up to date}."""
    specs = [cfg.model(n) for n in names] if names else cfg.enabled_models()
    with fold_backend(backend, n_jobs):
        done = {spec.name: train_model(spec, cfg, n_jobs) for spec in specs}
    from models.curves import plot_training_curves
    plot_training_curves(cfg)
    return done


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a catalogue name (repeatable); default: every enabled model")
    args = parser.parse_args(argv)
    train_models(args.model, load_config(), int(os.environ.get("N_JOBS") or 1), os.environ.get("BACKEND"))


if __name__ == "__main__":
    main()
