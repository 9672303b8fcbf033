"""The training paths, one class each: prepare once per model, then fit and predict per fold.

`trainer_for(spec)` picks the first class in TRAINERS that takes the model's spec. Adding a
training path is one class (a `takes` rule, `prepare`, `fit_predict`; its base classes are in
models/trainer_base.py) and one entry there; models/train.py runs every path through the same fold
loop and artifacts.
"""
from __future__ import annotations

import numpy as np

from core.config import ModelSpec
from core.errors import PipelineError
from models.partial import FullTrainer, PartialTrainer
from models.trainer_base import NetworkTrainer, Trainer, embed_once


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


class CachedHeadTrainer(NetworkTrainer):
    """Frozen modules: their embeddings are computed once (cached, memory-mapped); the head trains on them."""
    path, description = "cache", "frozen module, heads on cached embeddings"

    @staticmethod
    def takes(spec):
        return spec.kind == "hub" and not spec.trainable and spec.features == "sentence"

    def prepare(self):
        return {"embed_seconds": embed_once(self.embeddings, self.module_paths(), self.train, self.test)}

    def embeddings(self, module: str, texts: np.ndarray, label: str):
        from models.caches import cached_embeddings
        from models.devices import devices
        return cached_embeddings(module, texts, label, devices().compute_dtype)

    def network(self, spec, fold, dev, batch, y):
        from models.batches import embedding_dataset
        from models.networks import cached_model
        modules = self.module_paths()       # memory-mapped, read batch by batch: never the whole matrix in memory
        x, x_test = ([self.embeddings(m, t, name) for m in modules]
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
        return {"embed_seconds": embed_once(self.token_cache, self.module_paths(), self.train, self.test)}

    def token_cache(self, module: str, texts: np.ndarray, label: str):
        from models.caches import cached_token_embeddings
        from models.devices import devices
        return cached_token_embeddings(module, texts, label, precision=self.spec.token_precision,
                                       budget_gb=self.cfg.workspace.disk_budget_gb,
                                       compute_dtype=devices().compute_dtype)

    def network(self, spec, fold, dev, batch, y):
        from models.batches import token_dataset
        from models.networks import recurrent_token_model, token_model
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
    """A fine-tuned module runs inside every training step, on length-bucketed batches of texts (a module
    that takes token ids trains through FullTrainer instead, tokenized once)."""
    path, description = "module", "fine-tuned module inside the training step"

    @staticmethod
    def takes(spec):
        return spec.kind == "hub" and spec.trainable

    def network(self, spec, fold, dev, batch, y):
        from models.batches import SHUFFLE_BATCHES, bucketed, predict, text_dataset, token_lengths
        from models.handles import hub_layers
        from models.networks import module_model
        x, x_test = self.train.texts, self.test.texts
        fit_rows, held = fold.fit_rows, fold.held_rows
        steps = -(-len(fit_rows) // batch)
        with dev.strategy.scope():                # the module's variables too: mirrored on every replica
            layers = hub_layers(spec, self.cfg, compute_dtype=dev.compute_dtype)
            model = module_model(spec, layers, steps_per_epoch=steps)
        module = layers[0].resolved_object
        length, test_length = (token_lengths(module, t) for t in (x, x_test))
        train_data = text_dataset(x, bucketed(fit_rows, length, batch, spec.seed + fold.k), y, batch) \
            .shuffle(SHUFFLE_BATCHES, seed=spec.seed + fold.k)
        history = self.fit(model, train_data, text_dataset(x, held, y, batch), spec, fold, steps)
        return (predict(model, lambda rows, b: text_dataset(x, rows, None, b), held, batch, length),
                predict(model, lambda rows, b: text_dataset(x_test, rows, None, b), np.arange(len(x_test)), batch,
                        test_length), history)


TRAINERS: list[type[Trainer]] = [TfidfTrainer, CachedHeadTrainer, TokenHeadTrainer, PartialTrainer, FullTrainer,
                                 ModuleTrainer]


def trainer_for(spec: ModelSpec) -> type[Trainer]:
    for trainer in TRAINERS:
        if trainer.takes(spec):
            return trainer
    raise PipelineError(f"[models.{spec.name}]: no training path takes kind = {spec.kind!r} "
                        f"(known kinds: 'hub', 'tfidf')")
