"""A module's top layers, its pooling and the dense head fine-tuned per fold on inputs computed once per text and
cached: the states below the top n layers (kind "partial") or the token ids (kind "full": every layer and the
embeddings). Nothing below the top layers runs in a training step.

The module's layers learn at module_lr and the head at lr (models.training.TwoSpeedModel, gradients clipped
together); both rates warm up over the first 6% of the steps, then decay linearly to zero. Batches hold texts of
similar length (models.batches). They compute in the devices' precision (models.precision: the module's compute
dtype, float32 variables).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import PipelineError
from core.schema import setting
from models.kinds.base import ModuleOptions, NetworkKind, cache_once

EVAL_BATCH = 4          # evaluation and prediction batches, in training batches: no gradients to keep


@dataclass(frozen=True, kw_only=True)
class FineTuneOptions(ModuleOptions):
    module_lr: float = setting(3e-5, above=0)     # the module's learning rate (the head's is lr)


class TopLayers(NetworkKind):
    """The shared training of "partial" and "full": what differs is which inputs are cached (`cache`) and how many
    top layers train (`n_top`)."""
    from_ids = False

    def n_top(self) -> int | None:
        """The top layers that train (None: all of them)."""
        raise NotImplementedError

    def cache(self, module: str, texts: np.ndarray, label: str):
        """(values, offsets) of the cached inputs of `texts`: text i's are values[offsets[i]:offsets[i + 1]]."""
        raise NotImplementedError

    def prepare(self, splits=("train", "test")):
        [module] = self.module_paths()
        layers = self.layer_count(module)
        seconds = cache_once(self.cache, [module], {s: self.split(s) for s in splits})
        return {"embed_seconds": seconds, "module_layers": layers, "trainable_layers": self.n_top() or layers}

    def layer_count(self, module_path: str) -> int:
        """The module's layer count, once the top layers asked for are checked against it."""
        from models.handles import frozen
        from models.modules.savedmodel import LAYER_FUNCTIONS, has_layer_functions
        module = frozen(module_path)
        where = f"{self.run.config_path}: [models.{self.spec.name}]"
        if not has_layer_functions(module):
            raise PipelineError(f"{where} kind {self.spec.kind!r} needs a module that exposes its layers "
                                f"({', '.join(LAYER_FUNCTIONS)}); {module_path} has none (minilm has them when built "
                                f"by `make modules` since partial fine-tuning was added): rebuild it with rm -rf "
                                f"{module_path} && make modules, or choose kind = \"module\"")
        layers = len(module.layer_variables)
        if (self.n_top() or 0) > layers:
            raise PipelineError(f"{where} trainable_layers = {self.n_top()}: the module {module_path} has {layers} "
                                f"layers; use 1..{layers}")
        return layers

    def inputs(self, split: str):
        [module] = self.module_paths()
        return self.cache(module, self.split(split).texts, split)

    def network(self, options, fold, dev):
        from models.networks import top_model
        [module] = self.module_paths()
        values, _ = self.inputs("train")
        # a fresh copy of the top layers for every fold (and seed), from the module's pretrained weights
        return top_model(options, module, self.n_top(), self.steps(options, fold), values, dev.compute_dtype,
                         self.from_ids)

    def training_data(self, options, fold, y):
        from models.batches import SHUFFLE_BATCHES, bucketed, token_dataset
        values, offsets = self.inputs("train")
        rows = bucketed(fold.fit_rows, np.diff(offsets), options.batch_size, options.seed + fold.k)
        return token_dataset(values, offsets, rows, y, options.batch_size) \
            .shuffle(SHUFFLE_BATCHES, seed=options.seed + fold.k)

    def validation_data(self, options, fold, y):
        from models.batches import token_dataset
        values, offsets = self.inputs("train")
        held = fold.held_rows[np.argsort(np.diff(offsets)[fold.held_rows], kind="stable")]
        return token_dataset(values, offsets, held, y, EVAL_BATCH * options.batch_size)

    def predict(self, model, options, split, rows):
        from models.batches import predict, token_dataset
        values, offsets = self.inputs(split)
        return predict(model, lambda chosen, b: token_dataset(values, offsets, chosen, None, b), rows,
                       EVAL_BATCH * options.batch_size, np.diff(offsets))
