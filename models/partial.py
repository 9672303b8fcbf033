"""Fine-tuning a module on inputs computed once per text: its top n layers on cached states of the layers below
them (partial), or the whole module on cached token ids (full).

With `trainable_layers = n` (and trainable = true) in a model table, the module's bottom L - n layers
are frozen, so each text's per-token states below the top n layers are the same in every epoch and
fold: they are computed once (the module's `bottom_states`, cached in half precision and memory-mapped
like the token cache, models.embed_cache) and every fold trains only a fresh copy of the top n layers
(the module's `top_layers`, initialised from its pretrained weights, with its dropout), its pooling
and the dense head, on batches of similar-length texts read from the cache. n = L (all the layers)
is full fine-tuning in effect, except that the embeddings layer stays frozen.

With trainable = true and no trainable_layers, a module that takes token ids (savedmodel's ID_FUNCTIONS)
trains whole, embeddings included (FullTrainer): each text is tokenized once and its ids cached, and each
fold's batches of ids feed the module's embeddings layer, all its layers and its pooling; the token table's
rows are gathered here, so its gradient is sparse and lazy_adam updates only the rows a batch used.

The module layers learn at module_lr and the head at lr (keras_model.TwoSpeedModel, gradients clipped
together); both rates warm up over the first WARMUP of the steps, then decay linearly to zero. Both paths
compute in the devices' precision (models.devices: the module's compute_dtype, float32 variables).
"""
from __future__ import annotations

import numpy as np

from core.errors import PipelineError
from models.trainer_base import NetworkTrainer, embed_once

EVAL_BATCH = 4          # evaluation and prediction batches, in training batches: no gradients to keep


def layer_count(spec, cfg, module_path: str) -> int:
    """The module's layer count, once trainable_layers is checked against it; PipelineError naming the table."""
    from models.modules.savedmodel import LAYER_FUNCTIONS, has_layer_functions
    from models.handles import frozen
    where = f"{cfg.path}: [models.{spec.name}] trainable_layers = {spec.trainable_layers}"
    module = frozen(module_path)
    if not has_layer_functions(module):
        raise PipelineError(f"{where} needs a module that exposes its layers ({', '.join(LAYER_FUNCTIONS)}); "
                            f"{module_path} has none (minilm has them when built by `make modules` since partial "
                            f"fine-tuning was added): rebuild it with rm -rf {module_path} && make modules, or "
                            f"drop trainable_layers to fine-tune the whole module")
    layers = len(module.layer_variables)
    if (spec.trainable_layers or 0) > layers:
        raise PipelineError(f"{where}: the module {module_path} has {layers} layers; use 1..{layers}")
    return layers


def bottom_states(module_path: str, texts: np.ndarray, label: str, n_top: int, precision: str = "float16",
                  budget_gb: float | None = None, compute_dtype: str = "float32"):
    """(values, offsets) of the states below the module's top n_top layers, cached once (models.embed_cache)."""
    from models.caches import cached_token_embeddings
    return cached_token_embeddings(module_path, texts, label, "bottom_states", precision=precision,
                                   budget_gb=budget_gb, compute_dtype=compute_dtype, n_top=n_top)


class CachedInputsTrainer(NetworkTrainer):
    """A module's top layers + pooling + head fine-tuned per fold on inputs computed once per text and cached:
    the states below the top layers (PartialTrainer) or the token ids (FullTrainer)."""
    from_ids = False

    def n_top(self) -> int | None:
        """The top layers that train (None: all of them)."""
        raise NotImplementedError

    def inputs(self, module: str, texts: np.ndarray, label: str):
        """(values, offsets) of the cached inputs of `texts`: text i's are values[offsets[i]:offsets[i + 1]]."""
        raise NotImplementedError

    def prepare(self):
        [module] = self.module_paths()
        layers = layer_count(self.spec, self.cfg, module)
        seconds = embed_once(self.inputs, [module], self.train, self.test)
        return {"embed_seconds": seconds, "module_layers": layers, "trainable_layers": self.n_top() or layers}

    def network(self, spec, fold, dev, batch, y):
        from models.batches import SHUFFLE_BATCHES, bucketed, predict, token_dataset
        from models.networks import top_model
        [module] = self.module_paths()
        (values, offsets), (test_values, test_offsets) = (self.inputs(module, t, name) for t, name in
                                                          ((self.train.texts, "train"), (self.test.texts, "test")))
        steps = -(-len(fold.fit_rows) // batch)
        with dev.strategy.scope():          # a fresh copy of the top layers for every fold (and seed)
            model = top_model(spec, module, self.n_top(), steps, values, dev.compute_dtype, self.from_ids)
        lengths, test_lengths = np.diff(offsets), np.diff(test_offsets)
        train_data = token_dataset(values, offsets, bucketed(fold.fit_rows, lengths, batch, spec.seed + fold.k),
                                   y, batch).shuffle(SHUFFLE_BATCHES, seed=spec.seed + fold.k)
        held = fold.held_rows[np.argsort(lengths[fold.held_rows], kind="stable")]
        history = self.fit(model, train_data, token_dataset(values, offsets, held, y, EVAL_BATCH * batch),
                           spec, fold, steps)
        return (predict(model, lambda rows, b: token_dataset(values, offsets, rows, None, b), fold.held_rows,
                        EVAL_BATCH * batch, lengths),
                predict(model, lambda rows, b: token_dataset(test_values, test_offsets, rows, None, b),
                        np.arange(len(test_lengths)), EVAL_BATCH * batch, test_lengths),
                history)


class PartialTrainer(CachedInputsTrainer):
    """trainable_layers = n: the top n module layers + pooling + head train per fold on cached lower states."""
    path, description = "partial", "top module layers fine-tuned on cached states of the layers below"

    @staticmethod
    def takes(spec):
        return spec.kind == "hub" and spec.trainable and spec.trainable_layers is not None

    def n_top(self):
        return self.spec.trainable_layers

    def inputs(self, module: str, texts: np.ndarray, label: str):
        """The cached states below the model's trainable layers (in the model's token_precision)."""
        from models.devices import devices
        return bottom_states(module, texts, label, self.spec.trainable_layers, self.spec.token_precision,
                             self.cfg.workspace.disk_budget_gb, devices().compute_dtype)


class FullTrainer(CachedInputsTrainer):
    """trainable = true on a module that takes token ids: every layer and the embeddings train, on token ids
    tokenized once per text (not in every step), in batches of similar length."""
    path, description, from_ids = "full", "whole module fine-tuned on token ids tokenized once", True

    @staticmethod
    def takes(spec):
        from models.handles import local_module
        from models.modules.savedmodel import takes_token_ids
        if not (spec.kind == "hub" and spec.trainable and spec.trainable_layers is None and len(spec.handles) == 1):
            return False
        path = local_module(spec.handles[0])
        return path is not None and takes_token_ids(path)

    def n_top(self):
        return None

    def inputs(self, module: str, texts: np.ndarray, label: str):
        from models.caches import cached_token_ids
        return cached_token_ids(module, texts, label)
