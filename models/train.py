"""Train catalogue models on every fold: out-of-fold predictions for train, fold-averaged ones for test.

    python -m models.train --model NAME [--model NAME ...]     (make train: every enabled model)

Per model, in models/<model>/: stamp.json (what it is made from), fold<k>/ (predictions, weights,
history, TensorBoard logs, done.json), then oof.npy, test.npy and, last, metrics.json.
A finished fold is never trained again, so an interrupted run resumes at the first unfinished
fold. A model whose spec, module, folds or data changed is refused until it is rebuilt
(`make clean-model MODEL=x`, or FORCE=1). Folds run through joblib: N_JOBS=n runs n at once.
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
from core.cli import entry_point
from core.config import Config, ModelSpec, load_config
from core.data import Split, load_test, load_train
from core.errors import PipelineError
from core.metrics import f1_at, summarize
from core.paths import model_dir
from folds.make_folds import folds_fingerprint, load_folds
from models.embed_cache import module_fingerprint, texts_fingerprint


PATHS = {"tfidf": "TF-IDF + logistic regression", "cache": "frozen module, heads on cached embeddings",
         "tokens": "frozen module, pooling heads on cached token embeddings",
         "module": "fine-tuned module inside the training step"}


def training_path(spec: ModelSpec) -> str:
    """tfidf; cache (frozen: heads on cached embeddings); tokens (frozen: heads on cached token embeddings);
    module (the module runs in every step)."""
    if spec.kind == "tfidf":
        return "tfidf"
    if spec.kind != "hub":
        raise PipelineError(f"[models.{spec.name}]: kind must be 'hub' or 'tfidf', not {spec.kind!r}")
    return "module" if spec.trainable else "tokens" if spec.features == "tokens" else "cache"


def stamp_for(spec: ModelSpec, cfg: Config, train: Split, test: Split) -> dict:
    """Everything a model's predictions depend on; a change in any of it means a rebuild."""
    module = None
    if spec.kind == "hub":
        from models.handles import resolve_handles
        module = "+".join(module_fingerprint(path) for path in resolve_handles(spec, cfg))
    # Switching a model on/off is no change; nor is seeds = 1, the behaviour from before the option existed.
    spec_dict = {k: v for k, v in spec.as_dict().items() if k != "enabled" and (k, v) != ("seeds", 1)}
    return {"spec": spec_dict, "module_fingerprint": module, "folds_fingerprint": folds_fingerprint(),
            "train_texts": texts_fingerprint(train.texts), "test_texts": texts_fingerprint(test.texts)}


def claim(out: Path, stamp: dict) -> bool:
    """True to (re)train; False when finished from the same stamp. Refuses a changed one unless FORCE=1."""
    stamp_file = out / "stamp.json"
    if stamp_file.exists():
        old = read_json(stamp_file)
        if old == stamp and (out / "metrics.json").exists():
            os.utime(out / "metrics.json")       # so make sees it up to date against a newer config
            print(f"{out}: up to date")
            return False
        if old != stamp:
            changed = sorted(k for k in stamp if old.get(k) != stamp[k])
            if os.environ.get("FORCE") != "1":
                raise PipelineError(f"{out} was made from a different {', '.join(changed)}; its predictions would be "
                                    f"mixed. Rebuild it: make clean-model MODEL={out.name} (or FORCE=1)")
            print(f"{out}: {', '.join(changed)} changed; FORCE=1, rebuilding")
            shutil.rmtree(out)
    write_json(stamp_file, stamp)
    return True


def fold_done(out: Path, k: int) -> bool:
    return (out / f"fold{k}" / "done.json").exists()


def fold_job(name: str, k: int) -> dict:
    """Train one fold and save its predictions; runs in this process or a joblib worker."""
    cfg = load_config()
    spec = cfg.model(name)
    train, test = load_train(cfg), load_test(cfg)
    fold = load_folds(train, cfg)
    trn, val = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
    fold_dir = model_dir(name) / f"fold{k}"
    if fold_dir.exists():                        # a fold killed part-way restarts from scratch
        shutil.rmtree(fold_dir)
    fold_dir.mkdir(parents=True)
    start = time.time()
    if spec.kind == "tfidf":
        val_pred, test_pred, history = tfidf_fold(spec, train, test, trn, val, fold_dir)
    else:
        val_pred, test_pred, history = seed_averaged(spec, cfg, train, test, trn, val, k, fold_dir)
    seconds = time.time() - start
    write_npy(fold_dir / "oof.npy", val_pred)
    write_npy(fold_dir / "test.npy", test_pred)
    write_json(fold_dir / "history.json", history)
    epochs = len(history.get("loss", [])) or 1
    result = {"fold": k, "epochs": epochs, "seconds": seconds, "n": len(val), "train_rows": len(trn),
              **{f"own_{key}": v for key, v in summarize(train.target[val], val_pred).items()
                 if key in ("f1", "threshold")}}
    write_json(fold_dir / "done.json", result)
    print(f"{name} fold {k}: F1 {result['own_f1']:.4f} at its own best threshold, {epochs} epoch(s), "
          f"{seconds:.0f} s", flush=True)
    return result


def tfidf_fold(spec, train, test, trn, val, fold_dir):
    from models.tfidf import fit_predict
    fitted, (val_pred, test_pred) = fit_predict(spec, train.texts[trn], train.target[trn],
                                                [train.texts[val], test.texts])
    joblib.dump(fitted, fold_dir / "model.joblib")
    return val_pred, test_pred, {}


def seed_averaged(spec, cfg, train, test, trn, val, k, fold_dir):
    """The fold's network trained `seeds` times from different seeds, predictions averaged: cheap variance
    reduction for frozen heads. With several seeds each run keeps its own seed<s>/ folder; the fold's
    history is the first run's."""
    if spec.seeds == 1:
        return keras_fold(spec, cfg, train, test, trn, val, k, fold_dir, f"{spec.name} fold {k}")
    val_preds, test_preds, first_history = [], [], None
    for s in range(spec.seeds):
        run_dir = fold_dir / f"seed{s}"
        run_dir.mkdir()
        val_pred, test_pred, history = keras_fold(dataclasses.replace(spec, seed=spec.seed + 1000 * s), cfg, train,
                                                  test, trn, val, k, run_dir,
                                                  f"{spec.name} fold {k} seed {s + 1}/{spec.seeds}")
        write_npy(run_dir / "oof.npy", val_pred)
        write_npy(run_dir / "test.npy", test_pred)
        write_json(run_dir / "history.json", history)
        val_preds.append(val_pred)
        test_preds.append(test_pred)
        if s == 0:
            first_history = history
    return np.mean(val_preds, axis=0), np.mean(test_preds, axis=0), first_history


def keras_fold(spec, cfg, train, test, trn, val, k, fold_dir, label):
    import tf_keras as keras
    from models.devices import devices
    from models.embed_cache import cached_embeddings, token_lengths
    from models.handles import hub_layers, resolve_handles
    from models.keras_model import bucketed_dataset, cached_model, dataset, fit, module_model, predict

    keras.utils.set_random_seed(spec.seed + k)
    dev = devices()
    batch, y = spec.batch_size * max(dev.gpus, 1), train.target.astype(np.float32)
    if training_path(spec) == "tokens":
        return token_fold(spec, cfg, train, test, trn, val, k, fold_dir, dev, batch, y, label)
    if training_path(spec) == "cache":          # inputs are the frozen modules' cached embeddings, side by side
        modules = resolve_handles(spec, cfg)
        x, x_test = (np.concatenate([cached_embeddings(m, t, name) for m in modules], axis=1)
                     for t, name in ((train.texts, "train"), (test.texts, "test")))
        length = test_length = None
        with dev.strategy.scope():
            model = cached_model(spec, x.shape[1], dev.xla)
        train_data = dataset(x[trn], y[trn], batch, True, spec.seed + k)
    else:                                       # inputs are texts; the module runs in every step
        layers = hub_layers(spec, cfg)
        x, x_test = train.texts, test.texts
        length, test_length = (token_lengths(layers[0].resolved_object, t) for t in (x, x_test))
        with dev.strategy.scope():
            model = module_model(spec, layers, steps_per_epoch=-(-len(trn) // batch))
        train_data = bucketed_dataset(x[trn], y[trn], length[trn], batch, spec.seed + k)
    history = fit(model, train_data, dataset(x[val], y[val], batch, False, 0), spec, steps=-(-len(trn) // batch),
                  label=label, log_dir=fold_dir / "logs")
    model.save_weights(str(fold_dir / "weights"))
    val_length = length[val] if length is not None else None
    return predict(model, x[val], batch, val_length), predict(model, x_test, batch, test_length), history


def token_fold(spec, cfg, train, test, trn, val, k, fold_dir, dev, batch, y, label):
    """A pooling head on the frozen module's cached token embeddings: read batch by batch, padded to the longest."""
    from models.embed_cache import cached_token_embeddings
    from models.handles import resolve_handles
    from models.keras_model import fit, token_dataset, token_model

    [module] = resolve_handles(spec, cfg)
    (values, offsets), (test_values, test_offsets) = (cached_token_embeddings(module, t, name)
                                                      for t, name in ((train.texts, "train"), (test.texts, "test")))
    with dev.strategy.scope():
        model = token_model(spec, values.shape[1])
    history = fit(model, token_dataset(values, offsets, trn, y, batch, spec.seed + k),
                  token_dataset(values, offsets, val, y, batch), spec, steps=-(-len(trn) // batch),
                  label=label, log_dir=fold_dir / "logs")
    model.save_weights(str(fold_dir / "weights"))
    val_pred = model.predict(token_dataset(values, offsets, val, None, batch), verbose=0).reshape(-1)
    all_test = np.arange(len(test_offsets) - 1)
    test_pred = model.predict(token_dataset(test_values, test_offsets, all_test, None, batch), verbose=0)
    return val_pred, test_pred.reshape(-1), history


def assemble(spec: ModelSpec, out: Path, train: Split, fold: np.ndarray, stamp: dict, extra: dict) -> dict:
    """oof.npy, test.npy and metrics.json (last: it is the 'done' marker) from the finished folds."""
    k = int(fold.max()) + 1
    oof = np.full(len(train), np.nan, dtype=np.float32)
    test = []
    folds = [read_json(out / f"fold{f}" / "done.json") for f in range(k)]
    for f in range(k):
        oof[fold == f] = np.load(out / f"fold{f}" / "oof.npy")
        test.append(np.load(out / f"fold{f}" / "test.npy"))
    if np.isnan(oof).any():
        raise PipelineError(f"{out}: {np.isnan(oof).sum()} out-of-fold rows were not predicted")
    overall = summarize(train.target, oof)
    for f, result in enumerate(folds):
        rows = fold == f
        result.update({key: v for key, v in summarize(train.target[rows], oof[rows]).items()
                       if key in ("auc", "log_loss", "positives")},
                      f1=f1_at(train.target[rows], oof[rows], overall["threshold"]))
    seconds = sum(r["seconds"] for r in folds)
    examples = sum(r["train_rows"] * r["epochs"] for r in folds)
    metrics = {"model": spec.name, "spec": spec.as_dict(), "stamp": stamp, "k": k,
               "folds_fingerprint": stamp["folds_fingerprint"], "oof": overall, "folds": folds,
               "wall_seconds": seconds + extra.get("embed_seconds", 0.0),
               "examples_per_second": examples / seconds if seconds else float("nan"), **extra}
    write_npy(out / "oof.npy", oof)
    write_npy(out / "test.npy", np.mean(test, axis=0).astype(np.float32))
    write_json(out / "metrics.json", metrics)
    return metrics


def warm_cache(spec: ModelSpec, cfg: Config, train: Split, test: Split) -> float:
    """Embed train and test once, before the folds (and before any worker process) need them."""
    from models.embed_cache import cached_embeddings, cached_token_embeddings
    from models.handles import resolve_handles
    start = time.time()
    embed = cached_token_embeddings if training_path(spec) == "tokens" else cached_embeddings
    for module in resolve_handles(spec, cfg):
        embed(module, train.texts, "train")
        embed(module, test.texts, "test")
    return time.time() - start


def train_model(spec: ModelSpec, cfg: Config, n_jobs: int) -> dict | None:
    out = model_dir(spec.name)
    train, test = load_train(cfg), load_test(cfg)
    fold = load_folds(train, cfg)
    path = training_path(spec)
    if not claim(out, stamp_for(spec, cfg, train, test)):
        return None
    from models.devices import devices
    device = devices().describe() if path != "tfidf" else "CPU"
    print(f"{spec.name}: {PATHS[path]} on {device}", flush=True)
    extra = {"path": path, "device": device}
    if path in ("cache", "tokens"):
        extra["embed_seconds"] = warm_cache(spec, cfg, train, test)
    todo = [k for k in range(cfg.folds.k) if not fold_done(out, k)]
    if len(todo) < cfg.folds.k:
        print(f"{spec.name}: resuming, folds {todo} left of {cfg.folds.k}", flush=True)
    joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(fold_job)(spec.name, k) for k in todo)
    metrics = assemble(spec, out, train, fold, read_json(out / "stamp.json"), extra)
    print(f"{spec.name}: OOF F1 {metrics['oof']['f1']:.4f} at threshold {metrics['oof']['threshold']:.3f}, "
          f"AUC {metrics['oof']['auc']:.4f}, {metrics['wall_seconds']:.0f} s", flush=True)
    return metrics


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a catalogue name (repeatable); default: every enabled model")
    args = parser.parse_args(argv)
    cfg = load_config()
    specs = [cfg.model(n) for n in args.model] if args.model else cfg.enabled_models()
    n_jobs = int(os.environ.get("N_JOBS") or 1)
    for spec in specs:
        train_model(spec, cfg, n_jobs)
    from models.curves import plot_training_curves
    plot_training_curves(cfg)


if __name__ == "__main__":
    main()
