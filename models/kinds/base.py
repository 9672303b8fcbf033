"""What every model kind shares: its typed spec, the options every network takes, one fold's inputs, the Kind
interface (prepare once, fit and predict a fold, predict a new test set with a fold's saved model) and Keras
networks trained per fold (with seed averaging).

A kind is one class: its `Options` dataclass (keys, types, ranges, defaults: core.schema; `LATER`: options added
after models were first trained, left out of stamps at their defaults so those models stay up to date; `problems`:
checks across its keys) and its training. models/kinds/__init__.py registers it by name.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from core.artifacts import write_json, write_npy
from core.data import Split
from core.run import Run
from core.schema import setting


@dataclass(frozen=True, kw_only=True)
class Options:
    """Every kind's options have a seed."""
    seed: int = setting(42, at_least=0)
    LATER: ClassVar[tuple[str, ...]] = ()

    def problems(self) -> list[str]:
        return []


@dataclass(frozen=True, kw_only=True)
class NetworkOptions(Options):
    """A Keras network trained per fold: the dense head and how it learns."""
    head: tuple[int, ...] = setting((256, 64), at_least=1)   # hidden widths of the dense head
    dropout: float = setting(0.2, at_least=0, below=1)
    lr: float = setting(1e-3, above=0)                       # the head's learning rate
    clipnorm: float = setting(1.0, above=0)
    batch_size: int = setting(128, at_least=1)
    epochs: int = setting(10, at_least=1)
    patience: int = setting(2, at_least=0)                   # early stopping on validation loss, best weights kept
    seeds: int = setting(1, at_least=1)                      # networks per fold from seed, seed + 1000, ...: averaged
    LATER: ClassVar[tuple[str, ...]] = ("seeds",)


@dataclass(frozen=True, kw_only=True)
class ModuleOptions(NetworkOptions):
    """A network over one hub module: a [modules] name, a tfhub.dev / Kaggle Models URL or a SavedModel folder."""
    handle: str

    @property
    def handles(self) -> tuple[str, ...]:
        return (self.handle,)


@dataclass(frozen=True)
class ModelSpec:
    """A catalogue entry made typed: its name, its kind, whether it runs here, and its kind's options."""
    name: str
    kind: str
    enabled: bool | str
    options: Options

    @property
    def handles(self) -> tuple[str, ...]:
        """The hub modules it loads (none for TF-IDF)."""
        return getattr(self.options, "handles", ())

    def as_dict(self) -> dict:
        """What metrics.json and the run record keep: every option."""
        return {"name": self.name, "kind": self.kind, **_plain(dataclasses.asdict(self.options))}

    def stamp(self) -> dict:
        """What its predictions depend on: the options, but those added later left out at their defaults."""
        defaults = {f.name: f.default for f in dataclasses.fields(self.options)}
        return {k: v for k, v in self.as_dict().items()
                if not (k in type(self.options).LATER and v == _plain(defaults[k]))}


def _plain(value):
    """JSON's form of an option: lists for tuples."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class FoldData:
    """One fold of one model: which train rows it fits on and predicts, where its files go."""
    k: int
    fit_rows: np.ndarray          # train.csv rows the fold trains on
    held_rows: np.ndarray         # train.csv rows it predicts out of fold
    folder: Path
    label: str                    # for progress bars and logs: "<model> fold <k>"


NO_DEVICES = {"kind": "CPU", "strategy": "none (scikit-learn)", "replicas": 1, "precision": "float64",
              "devices": ["CPU"]}                  # what a kind that runs no TensorFlow records as its devices


class Kind:
    """One way of training a model. Holds only the spec and the data (picklable for joblib workers)."""
    description = ""
    Options: ClassVar[type[Options]] = Options

    def __init__(self, spec: ModelSpec, run: Run, train: Split, test: Split):
        self.spec, self.run, self.train, self.test = spec, run, train, test

    @property
    def options(self):
        return self.spec.options

    def module_paths(self) -> list[str]:
        """The hub modules it loads (resolved handles): part of what its predictions depend on."""
        from models.handles import resolve_handles
        return resolve_handles(self.spec, self.run)

    def device(self) -> dict:
        """The devices it trains on, as metrics.json records them (models.devices); sets them up first."""
        from models.devices import devices
        return devices(self.run).record()

    def prepare(self, splits: tuple[str, ...] = ("train", "test")) -> dict:
        """Once per model, before any fold (and before worker processes exist): what the folds read of `splits`
        computed and cached; returns facts for metrics.json."""
        return {}

    def fit_predict(self, fold: FoldData) -> tuple[np.ndarray, np.ndarray, dict]:
        """(held-out predictions, test predictions, history) of one fold."""
        raise NotImplementedError

    def predict_test(self, fold: FoldData) -> np.ndarray:
        """The test set's predictions by the fold's saved model (a new test set: Kaggle's stage 2)."""
        raise NotImplementedError

    def split(self, name: str) -> Split:
        return self.train if name == "train" else self.test


class NetworkKind(Kind):
    """A Keras network per fold; `seeds = n` trains it n times from different seeds and averages.

    A kind says what its network is and how data reaches it: `network` (built in the devices' strategy scope),
    `training_data` and `validation_data`, and `predict` (a split's rows with a fitted network)."""

    def fit_predict(self, fold):
        runs = self.seed_runs(fold)
        if len(runs) == 1:
            return self.fit_once(*runs[0])
        held, test, first_history = [], [], None
        for options, run in runs:
            run.folder.mkdir()
            h, t, history = self.fit_once(options, run)
            save_predictions(run.folder, h, t, history)
            held.append(h)
            test.append(t)
            first_history = first_history or history
        return np.mean(held, axis=0), np.mean(test, axis=0), first_history

    def predict_test(self, fold):
        from models.devices import devices
        rows = np.arange(len(self.test))
        predictions = []
        for options, run in self.seed_runs(fold):
            dev = devices(self.run)
            with dev.strategy.scope():
                model = self.network(options, fold, dev)
            model.load_weights(str(run.folder / "weights")).expect_partial()
            predictions.append(self.predict(model, options, "test", rows))
        return np.mean(predictions, axis=0)

    def seed_runs(self, fold: FoldData) -> list[tuple[NetworkOptions, FoldData]]:
        """(options, fold) of each network the fold trains: seed s in fold<k>/seed<s>/ when seeds > 1."""
        seeds = self.options.seeds
        if seeds == 1:
            return [(self.options, fold)]
        return [(dataclasses.replace(self.options, seed=self.options.seed + 1000 * s),
                 dataclasses.replace(fold, folder=fold.folder / f"seed{s}", label=f"{fold.label} seed {s + 1}/{seeds}"))
                for s in range(seeds)]

    def fit_once(self, options, fold: FoldData) -> tuple[np.ndarray, np.ndarray, dict]:
        import tf_keras as keras
        from models.devices import devices
        from models.training import fit
        keras.utils.set_random_seed(options.seed + fold.k)
        dev = devices(self.run)
        y = self.train.target.astype(np.float32)
        with dev.strategy.scope():
            model = self.network(options, fold, dev)
        # batch_size is the global batch, split across the replicas: the same steps on one device or several
        history = fit(model, self.training_data(options, fold, y), self.validation_data(options, fold, y), options,
                      steps=self.steps(options, fold), label=fold.label, log_dir=fold.folder / "logs")
        model.save_weights(str(fold.folder / "weights"))
        return (self.predict(model, options, "train", fold.held_rows),
                self.predict(model, options, "test", np.arange(len(self.test))), history)

    @staticmethod
    def steps(options, fold: FoldData) -> int:
        """Training steps an epoch."""
        return -(-len(fold.fit_rows) // options.batch_size)

    def network(self, options, fold: FoldData, dev):
        """The fold's network, compiled."""
        raise NotImplementedError

    def training_data(self, options, fold: FoldData, y: np.ndarray):
        raise NotImplementedError

    def validation_data(self, options, fold: FoldData, y: np.ndarray):
        raise NotImplementedError

    def predict(self, model, options, split: str, rows: np.ndarray) -> np.ndarray:
        """Probabilities for `rows` of the train or test split, in their order."""
        raise NotImplementedError


def save_predictions(folder: Path, held: np.ndarray, test: np.ndarray, history: dict) -> None:
    write_npy(folder / "oof.npy", np.asarray(held, dtype=np.float32))
    write_npy(folder / "test.npy", np.asarray(test, dtype=np.float32))
    write_json(folder / "history.json", history)


def cache_once(cache, modules: list[str], splits: dict[str, Split]) -> float:
    """Cache each split's texts once with each module (a cache hit when done before); the seconds it took."""
    start = time.time()
    for module in modules:
        for name, split in splits.items():
            cache(module, split.texts, name)
    return time.time() - start
