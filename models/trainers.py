"""The training paths, one class each: prepare once per model, then fit and predict per fold.

`trainer_for(spec)` picks the first class in TRAINERS that takes the model's spec. Adding a
training path is one class (a `takes` rule, `prepare`, `fit_predict`) and one entry there;
models/train.py runs every path through the same fold loop and artifacts.
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
from core.errors import PipelineError


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


class TfidfTrainer(Trainer):
    path, description = "tfidf", "TF-IDF + logistic regression"

    @staticmethod
    def takes(spec):
        return spec.kind == "tfidf"

    def module_paths(self):
        return []

    def device(self):
        return {"kind": "CPU", "strategy": "none (scikit-learn)", "replicas": 1, "precision": "float64",
                "devices": ["CPU"]}

    def fit_predict(self, fold):
        import joblib
        from models.tfidf import fit_predict
        t = self.train
        fitted, (held, test) = fit_predict(self.spec, t.texts[fold.fit_rows], t.target[fold.fit_rows],
                                           [t.texts[fold.held_rows], self.test.texts])
        joblib.dump(fitted, fold.folder / "model.joblib")
        return held, test, {}


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
        """Fit with early stopping (models.keras_model.fit), then keep the fold's weights."""
        from models.keras_model import fit
        history = fit(model, train_data, val_data, spec, steps=steps, label=fold.label, log_dir=fold.folder / "logs")
        model.save_weights(str(fold.folder / "weights"))
        return history


class CachedHeadTrainer(NetworkTrainer):
    """Frozen modules: their embeddings are computed once (cached, memory-mapped); the head trains on them."""
    path, description = "cache", "frozen module, heads on cached embeddings"

    @staticmethod
    def takes(spec):
        return spec.kind == "hub" and not spec.trainable and spec.features == "sentence"

    def prepare(self):
        from models.embed_cache import cached_embeddings
        return {"embed_seconds": _timed(cached_embeddings, self.module_paths(), self.train, self.test)}

    def network(self, spec, fold, dev, batch, y):
        from models.embed_cache import cached_embeddings
        from models.keras_model import cached_model, embedding_dataset
        modules = self.module_paths()       # memory-mapped, read batch by batch: never the whole matrix in memory
        x, x_test = ([cached_embeddings(m, t, name) for m in modules]
                     for t, name in ((self.train.texts, "train"), (self.test.texts, "test")))
        with dev.strategy.scope():
            model = cached_model(spec, sum(part.shape[1] for part in x), dev.xla)
        fit_rows, held = fold.fit_rows, fold.held_rows
        history = self.fit(model, embedding_dataset(x, fit_rows, y, batch, spec.seed + fold.k),
                           embedding_dataset(x, held, y, batch), spec, fold, -(-len(fit_rows) // batch))
        predict = lambda parts, rows: model.predict(embedding_dataset(parts, rows, None, batch), verbose=0)  # noqa
        return predict(x, held).reshape(-1), predict(x_test, np.arange(len(x_test[0]))).reshape(-1), history


class TokenHeadTrainer(NetworkTrainer):
    """A frozen module's per-token outputs, cached once; a pooling or recurrent head reads them batch by batch."""
    path, description = "tokens", "frozen module, pooling heads on cached token embeddings"

    @staticmethod
    def takes(spec):
        return spec.kind == "hub" and not spec.trainable and spec.features == "tokens"

    def prepare(self):
        return {"embed_seconds": _timed(self.token_cache, self.module_paths(), self.train, self.test)}

    def token_cache(self, module: str, texts: np.ndarray, label: str):
        from models.embed_cache import cached_token_embeddings
        return cached_token_embeddings(module, texts, label, precision=self.spec.token_precision,
                                       budget_gb=self.cfg.workspace.disk_budget_gb)

    def network(self, spec, fold, dev, batch, y):
        from models.keras_model import recurrent_token_model, token_dataset, token_model
        [module] = self.module_paths()
        (values, offsets), (test_values, test_offsets) = (self.token_cache(module, t, name) for t, name in
                                                          ((self.train.texts, "train"), (self.test.texts, "test")))
        with dev.strategy.scope():
            model = (token_model if spec.token_head == "pooling" else recurrent_token_model)(spec, values.shape[1])
        fit_rows, held = fold.fit_rows, fold.held_rows
        history = self.fit(model, token_dataset(values, offsets, fit_rows, y, batch, spec.seed + fold.k),
                           token_dataset(values, offsets, held, y, batch), spec, fold, -(-len(fit_rows) // batch))
        held_pred = model.predict(token_dataset(values, offsets, held, None, batch), verbose=0).reshape(-1)
        all_test = np.arange(len(test_offsets) - 1)
        test_pred = model.predict(token_dataset(test_values, test_offsets, all_test, None, batch), verbose=0)
        return held_pred, test_pred.reshape(-1), history


class ModuleTrainer(NetworkTrainer):
    """A fine-tuned module runs inside every training step, on length-bucketed batches of texts."""
    path, description = "module", "fine-tuned module inside the training step"

    @staticmethod
    def takes(spec):
        return spec.kind == "hub" and spec.trainable

    def network(self, spec, fold, dev, batch, y):
        from models.embed_cache import token_lengths
        from models.handles import hub_layers
        from models.keras_model import bucketed_dataset, dataset, module_model, predict
        x, x_test = self.train.texts, self.test.texts
        fit_rows, held = fold.fit_rows, fold.held_rows
        steps = -(-len(fit_rows) // batch)
        with dev.strategy.scope():                # the module's variables too: mirrored on every replica
            layers = hub_layers(spec, self.cfg)
            model = module_model(spec, layers, steps_per_epoch=steps)
        length, test_length = (token_lengths(layers[0].resolved_object, t) for t in (x, x_test))
        train_data = bucketed_dataset(x[fit_rows], y[fit_rows], length[fit_rows], batch, spec.seed + fold.k)
        history = self.fit(model, train_data, dataset(x[held], y[held], batch, False, 0), spec, fold, steps)
        return predict(model, x[held], batch, length[held]), predict(model, x_test, batch, test_length), history


from models.partial import PartialTrainer  # noqa: E402  (a NetworkTrainer: partial fine-tuning, models/partial.py)
TRAINERS: list[type[Trainer]] = [TfidfTrainer, CachedHeadTrainer, TokenHeadTrainer, PartialTrainer, ModuleTrainer]


def trainer_for(spec: ModelSpec) -> type[Trainer]:
    for trainer in TRAINERS:
        if trainer.takes(spec):
            return trainer
    raise PipelineError(f"[models.{spec.name}]: no training path takes kind = {spec.kind!r} "
                        f"(known kinds: 'hub', 'tfidf')")


def save_predictions(folder: Path, held: np.ndarray, test: np.ndarray, history: dict) -> None:
    write_npy(folder / "oof.npy", np.asarray(held, dtype=np.float32))
    write_npy(folder / "test.npy", np.asarray(test, dtype=np.float32))
    write_json(folder / "history.json", history)


def _timed(embed, modules: list[str], train: Split, test: Split) -> float:
    """Embed train and test once with each module (a cache hit when done before); the seconds it took."""
    start = time.time()
    for module in modules:
        embed(module, train.texts, "train")
        embed(module, test.texts, "test")
    return time.time() - start
