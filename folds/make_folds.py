"""Stratified K-fold assignment, saved once: folds/folds.csv (id, fold) in train.csv row order.

    python -m folds.make_folds

The whole competition is validated first (core.data.validate_competition): nothing is written for a
competition that a later stage would refuse.
The same train.csv and [folds] settings give byte-identical output. An existing folds file that
differs is never overwritten silently (models trained on it would be mixed with new folds):
core.claim refuses it, and FORCE=1 replaces it.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from core.artifacts import csv_bytes, file_fingerprint, write_bytes
from core.claim import claim
from core.cli import entry_point
from core.config import Config
from core.data import Split, validate_competition
from core.errors import PipelineError
from core.run import Run


def assign_folds(target: np.ndarray, k: int, seed: int) -> np.ndarray:
    """fold[i] = the fold in which row i is held out."""
    positives = int(target.sum())
    if min(positives, len(target) - positives) < k:
        raise PipelineError(f"train.csv has {positives} positive and {len(target) - positives} negative rows: "
                            f"too few for {k} stratified folds; lower [folds] k or add rows")
    fold = np.empty(len(target), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, held_out) in enumerate(splitter.split(np.zeros(len(target)), target)):
        fold[held_out] = f
    return fold


def folds_csv(train: Split, fold: np.ndarray, cfg: Config) -> bytes:
    return csv_bytes(pd.DataFrame({cfg.competition.id: train.ids, "fold": fold}))


def load_folds(run: Run, train: Split) -> np.ndarray:
    """The fold of each train row, checked against train.csv's ids and order."""
    cfg, path = run.config, run.folds_file
    if not path.exists():
        raise PipelineError(f"{path} not found; run `make folds` first")
    table = pd.read_csv(path, dtype={cfg.competition.id: str})
    if len(table) != len(train) or not np.array_equal(table[cfg.competition.id].to_numpy(dtype=object), train.ids):
        raise PipelineError(f"{path} does not match input/{cfg.competition.train} (different rows or order); "
                            f"rebuild it with `make folds FORCE=1` and retrain the models")
    return table["fold"].to_numpy(dtype=np.int64)


def folds_fingerprint(run: Run) -> str:
    return file_fingerprint(run.folds_file)


def report(fold: np.ndarray, target: np.ndarray) -> str:
    lines = [f"{'fold':>4} {'rows':>8} {'positive':>9}"]
    for f in range(fold.max() + 1):
        rows = fold == f
        lines.append(f"{f:>4} {rows.sum():>8,} {target[rows].mean():>9.2%}")
    lines.append(f"{'all':>4} {len(fold):>8,} {target.mean():>9.2%}")
    return "\n".join(lines)


def write_folds(run: Run) -> tuple[Split, np.ndarray]:
    """Validate the competition, then write folds/folds.csv unless it is up to date: (train, fold)."""
    cfg = run.config
    train = validate_competition(run)        # the whole competition, before anything is written
    fold = assign_folds(train.target, cfg.folds.k, cfg.folds.seed)
    data, path = folds_csv(train, fold, cfg), run.folds_file
    # The identity is the folds themselves: any change of train.csv's ids or labels, k or seed shows in it.
    identity = {"k": cfg.folds.k, "seed": cfg.folds.seed, "folds": hashlib.sha256(data).hexdigest()[:16]}
    rebuild = "Restore the old train.csv / [folds] settings (new folds mean retraining every model)"
    if claim(path.parent, identity, path.name, rebuild, run.force, clear=False):   # folds/ also holds this code
        write_bytes(path, data)
        print(f"{path}: {cfg.folds.k} stratified folds (seed {cfg.folds.seed})")
    return train, fold


@entry_point
def main() -> None:
    run = Run.from_environment()
    train, fold = write_folds(run)
    print(report(fold, train.target))
    print(f"fingerprint {folds_fingerprint(run)}")


if __name__ == "__main__":
    main()
