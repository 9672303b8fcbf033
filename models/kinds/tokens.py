"""Token heads: a frozen module's per-token outputs cached once; a pooling head (mean, max, learned attention) or a
recurrent one (bidirectional GRU / LSTM, then max + mean pooling) reads them batch by batch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.schema import setting
from models.kinds.base import ModuleOptions, NetworkKind, cache_once


@dataclass(frozen=True, kw_only=True)
class TokensOptions(ModuleOptions):
    token_precision: str = setting("float16", choices=("float16", "int8"))   # the cache's storage: int8 is half
    token_head: str = setting("pooling", choices=("pooling", "gru", "lstm"))
    rnn_units: int = setting(128, at_least=1)                                  # gru / lstm: units each way
    rnn_layers: int = setting(1, choices=(1, 2))
    LATER = ("seeds", "token_precision", "token_head", "rnn_units", "rnn_layers")


class Tokens(NetworkKind):
    description = "frozen module, pooling heads on cached token embeddings"
    Options = TokensOptions

    def prepare(self, splits=("train", "test")):
        return {"embed_seconds": cache_once(self.token_cache, self.module_paths(),
                                            {s: self.split(s) for s in splits})}

    def token_cache(self, module: str, texts: np.ndarray, label: str):
        from models.caches import cached_token_embeddings
        from models.devices import devices
        return cached_token_embeddings(self.run, module, texts, label, precision=self.options.token_precision,
                                       budget_gb=self.run.config.workspace.disk_budget_gb,
                                       compute_dtype=devices(self.run).compute_dtype)

    def inputs(self, split: str):
        [module] = self.module_paths()
        return self.token_cache(module, self.split(split).texts, split)

    def network(self, options, fold, dev):
        from models.networks import recurrent_token_model, token_model
        values, _ = self.inputs("train")
        return (token_model if options.token_head == "pooling" else recurrent_token_model)(options, values.shape[1])

    def training_data(self, options, fold, y):
        from models.batches import token_dataset
        return token_dataset(*self.inputs("train"), fold.fit_rows, y, options.batch_size, options.seed + fold.k)

    def validation_data(self, options, fold, y):
        from models.batches import token_dataset
        return token_dataset(*self.inputs("train"), fold.held_rows, y, options.batch_size)

    def predict(self, model, options, split, rows):
        from models.batches import token_dataset
        return model.predict(token_dataset(*self.inputs(split), rows, None, options.batch_size), verbose=0).reshape(-1)
