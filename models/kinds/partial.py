"""Partial fine-tuning: a module's top n layers (trainable_layers = n) trained per fold on the states of the layers
below them, computed once per text.

Those lower layers are frozen, so each text's per-token states under the top n layers are the same in every
epoch and fold: they are computed once (the module's `bottom_states`, cached in half precision or int8 and
memory-mapped, models.caches; the same pass fills the module's sentence-embedding cache) and every fold trains only
a fresh copy of the top n layers (the module's `top_layers`, from its pretrained weights, with its dropout), its
pooling and the dense head. n = all the layers is full fine-tuning in effect, but for the embeddings layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.run import Run
from core.schema import setting
from models.kinds.top_layers import FineTuneOptions, TopLayers


@dataclass(frozen=True, kw_only=True)
class PartialOptions(FineTuneOptions):
    trainable_layers: int = setting(at_least=1)   # the module's top n layers train; at most its layer count
    token_precision: str = setting("float16", choices=("float16", "int8"))   # the cached states' storage
    LATER = ("seeds", "token_precision")


class Partial(TopLayers):
    description = "top module layers fine-tuned on cached states of the layers below"
    Options = PartialOptions

    def n_top(self):
        return self.options.trainable_layers

    def cache(self, module: str, texts: np.ndarray, label: str):
        """The cached states below the model's trainable layers (in its token_precision)."""
        from models.devices import devices
        options = self.options
        return bottom_states(self.run, module, texts, label, options.trainable_layers, options.token_precision,
                             self.run.config.workspace.disk_budget_gb, devices(self.run).compute_dtype)


def bottom_states(run: Run, module_path: str, texts: np.ndarray, label: str, n_top: int, precision: str = "float16",
                  budget_gb: float | None = None, compute_dtype: str = "float32"):
    """(values, offsets) of the states below the module's top n_top layers, cached once (models.caches)."""
    from models.caches import cached_token_embeddings
    return cached_token_embeddings(run, module_path, texts, label, "bottom_states", precision=precision,
                                   budget_gb=budget_gb, compute_dtype=compute_dtype, n_top=n_top)
