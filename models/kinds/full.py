"""Full fine-tuning on token ids: every layer of a module and its embeddings trained per fold, each text tokenized
once (its ids cached), not in every step of every epoch and fold.

The module must take token ids (models.modules.savedmodel's ID_FUNCTIONS: MiniLM, all-mpnet-base-v2). Its token
table's rows are gathered outside it, so the table's gradient is sparse and LazyAdam updates only the rows a
batch used, instead of all 30k rows every step.
"""
from __future__ import annotations

import numpy as np

from models.kinds.top_layers import FineTuneOptions, TopLayers


class Full(TopLayers):
    description = "whole module fine-tuned on token ids tokenized once"
    Options = FineTuneOptions
    from_ids = True

    def n_top(self):
        return None

    def cache(self, module: str, texts: np.ndarray, label: str):
        from models.caches import cached_token_ids
        return cached_token_ids(self.run, module, texts, label)
