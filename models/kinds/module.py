"""A module fine-tuned inside the training step, strings in: for modules that take no token ids (a tfhub.dev
handle, USE m3, a word-vector module). Each step tokenizes and runs the whole module; batches hold texts of
similar length. A list of handles runs the modules side by side into one head."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.kinds.base import NetworkKind
from models.kinds.frozen import FrozenOptions
from models.kinds.top_layers import FineTuneOptions


@dataclass(frozen=True, kw_only=True)
class InStepOptions(FrozenOptions, FineTuneOptions):
    handle: str | tuple[str, ...]


class Module(NetworkKind):
    description = "fine-tuned module inside the training step"
    Options = InStepOptions

    def prepare(self, splits=("train", "test")):
        self._lengths = {s: self.lengths(s) for s in splits}       # once, before the folds (and their workers)
        return {}

    def lengths(self, split: str) -> np.ndarray:
        """Tokens per text by the first module's tokenizer: the batches' length order."""
        from models.batches import token_lengths
        from models.handles import frozen
        known = getattr(self, "_lengths", {})
        if split not in known:
            known[split] = token_lengths(frozen(self.module_paths()[0]), self.split(split).texts)
            self._lengths = known
        return known[split]

    def network(self, options, fold, dev):
        from models.handles import hub_layers
        from models.networks import module_model
        # the module's variables too: mirrored on every replica, back at their pretrained values
        return module_model(options, hub_layers(self.spec, self.run, True, dev.compute_dtype),
                            steps_per_epoch=self.steps(options, fold))

    def training_data(self, options, fold, y):
        from models.batches import SHUFFLE_BATCHES, bucketed, text_dataset
        rows = bucketed(fold.fit_rows, self.lengths("train"), options.batch_size, options.seed + fold.k)
        return text_dataset(self.train.texts, rows, y, options.batch_size) \
            .shuffle(SHUFFLE_BATCHES, seed=options.seed + fold.k)

    def validation_data(self, options, fold, y):
        from models.batches import text_dataset
        return text_dataset(self.train.texts, fold.held_rows, y, options.batch_size)

    def predict(self, model, options, split, rows):
        from models.batches import predict, text_dataset
        texts = self.split(split).texts
        return predict(model, lambda chosen, b: text_dataset(texts, chosen, None, b), rows, options.batch_size,
                       self.lengths(split))
