"""Frozen modules: each text embedded once by each module (cached, memory-mapped), a dense head trained per fold on
the embeddings. A list of handles lays the modules' embeddings side by side into one head."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.kinds.base import NetworkKind, NetworkOptions, cache_once


@dataclass(frozen=True, kw_only=True)
class FrozenOptions(NetworkOptions):
    handle: str | tuple[str, ...]      # a module, or several side by side

    @property
    def handles(self) -> tuple[str, ...]:
        return self.handle if isinstance(self.handle, tuple) else (self.handle,)

    def problems(self):
        return [] if self.handles else ["handle must name at least one module"]


class Frozen(NetworkKind):
    description = "frozen module, heads on cached embeddings"
    Options = FrozenOptions

    def prepare(self, splits=("train", "test")):
        return {"embed_seconds": cache_once(self.embeddings, self.module_paths(),
                                            {s: self.split(s) for s in splits})}

    def embeddings(self, module: str, texts: np.ndarray, label: str):
        from models.caches import cached_embeddings
        from models.devices import devices
        return cached_embeddings(self.run, module, texts, label, devices(self.run).compute_dtype)

    def inputs(self, split: str) -> list[np.ndarray]:
        """Each module's cached embeddings of the split: memory-mapped, read batch by batch."""
        return [self.embeddings(m, self.split(split).texts, split) for m in self.module_paths()]

    def network(self, options, fold, dev):
        from models.networks import cached_model
        return cached_model(options, sum(part.shape[1] for part in self.inputs("train")), dev.xla)

    def training_data(self, options, fold, y):
        from models.batches import embedding_dataset
        return embedding_dataset(self.inputs("train"), fold.fit_rows, y, options.batch_size, options.seed + fold.k)

    def validation_data(self, options, fold, y):
        from models.batches import embedding_dataset
        return embedding_dataset(self.inputs("train"), fold.held_rows, y, options.batch_size)

    def predict(self, model, options, split, rows):
        from models.batches import embedding_dataset
        return model.predict(embedding_dataset(self.inputs(split), rows, None, options.batch_size),
                             verbose=0).reshape(-1)
