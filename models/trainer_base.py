"""What every training path shares: one fold's inputs (FoldData), the Trainer interface, Keras networks
trained per fold (NetworkTrainer, with seed averaging), and the files a fold writes.

The paths themselves are in models/trainers.py (the registry) and models/partial.py.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.artifacts import write_json, write_npy
from core.config import Config, ModelSpec
from core.data import Split


@dataclass(frozen=True)
class FoldData:
    """One fold of one model: which train rows it fits on and predicts, where its files go."""
    k: int
    fit_rows: np.ndarray          # train.csv rows the fold trains on
    held_rows: np.ndarray         # train.csv rows it predicts out of fold
    folder: Path
    label: str                    # for progress bars and logs: "<model> fold <k>"


class Trainer:
    """One training path. Holds only the spec and the data (picklable for joblib workers)."""
    path = ""                     # the name metrics.json records
    description = ""

    def __init__(self, spec: ModelSpec, cfg: Config, train: Split, test: Split):
        self.spec, self.cfg, self.train, self.test = spec, cfg, train, test

    @staticmethod
    def takes(spec: ModelSpec) -> bool:
        raise NotImplementedError

    def module_paths(self) -> list[str]:
        """The hub modules the path loads (resolved handles): part of what its predictions depend on."""
        from models.handles import resolve_handles
        return resolve_handles(self.spec, self.cfg)

    def device(self) -> dict:
        """The devices it trains on, as metrics.json records them (models.devices); sets them up first."""
        from models.devices import devices
        return devices().record()

    def prepare(self) -> dict:
        """Once per model, before any fold (and before worker processes exist); returns facts for metrics.json."""
        return {}

    def fit_predict(self, fold: FoldData) -> tuple[np.ndarray, np.ndarray, dict]:
        """(held-out predictions, test predictions, history) of one fold."""
        raise NotImplementedError


class NetworkTrainer(Trainer):
    """A Keras network per fold; `seeds = n` trains it n times from different seeds and averages."""

    def fit_predict(self, fold):
        if self.spec.seeds == 1:
            return self.fit_once(self.spec, fold)
        held, test, first_history = [], [], None
        for s in range(self.spec.seeds):
            run = dataclasses.replace(fold, folder=fold.folder / f"seed{s}",
                                      label=f"{fold.label} seed {s + 1}/{self.spec.seeds}")
            run.folder.mkdir()
            h, t, history = self.fit_once(dataclasses.replace(self.spec, seed=self.spec.seed + 1000 * s), run)
            save_predictions(run.folder, h, t, history)
            held.append(h)
            test.append(t)
            first_history = first_history or history
        return np.mean(held, axis=0), np.mean(test, axis=0), first_history

    def fit_once(self, spec: ModelSpec, fold: FoldData) -> tuple[np.ndarray, np.ndarray, dict]:
        import tf_keras as keras
        from models.devices import devices
        keras.utils.set_random_seed(spec.seed + fold.k)
        # batch_size is the global batch, split across the replicas: the same steps on one device or several
        return self.network(spec, fold, devices(), spec.batch_size, self.train.target.astype(np.float32))

    def network(self, spec, fold, dev, batch, y):
        """Build, fit and predict with this path's network: (held-out predictions, test predictions, history)."""
        raise NotImplementedError

    @staticmethod
    def fit(model, train_data, val_data, spec: ModelSpec, fold: FoldData, steps: int) -> dict:
        """Fit with early stopping (models.training.fit), then keep the fold's weights."""
        from models.training import fit
        history = fit(model, train_data, val_data, spec, steps=steps, label=fold.label, log_dir=fold.folder / "logs")
        model.save_weights(str(fold.folder / "weights"))
        return history


def save_predictions(folder: Path, held: np.ndarray, test: np.ndarray, history: dict) -> None:
    write_npy(folder / "oof.npy", np.asarray(held, dtype=np.float32))
    write_npy(folder / "test.npy", np.asarray(test, dtype=np.float32))
    write_json(folder / "history.json", history)


def embed_once(embed, modules: list[str], train: Split, test: Split) -> float:
    """Embed train and test once with each module (a cache hit when done before); the seconds it took."""
    start = time.time()
    for module in modules:
        embed(module, train.texts, "train")
        embed(module, test.texts, "test")
    return time.time() - start
