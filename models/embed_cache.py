"""Frozen modules are embedded once: each distinct text set once per module, cached on disk, memory-mapped.

Training a head on a frozen module through the hub layer re-embeds every text every epoch of
every fold; the cache does it once, and the head then trains on plain float arrays. Keyed by
the module's weights (its variables index, which holds a checksum per tensor) and the texts.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.paths import cache_dir

BATCH = 1024   # texts per module call: large calls use the cores best (USE m3: 1,874/s at 1,024 vs 1,551/s at 128)


def module_fingerprint(module_path: str) -> str:
    index = Path(module_path) / "variables" / "variables.index"
    data = index.read_bytes() if index.exists() else module_path.encode()
    return hashlib.sha256(data).hexdigest()[:16]


def texts_fingerprint(texts: np.ndarray) -> str:
    digest = hashlib.sha256()
    for t in texts:
        digest.update(t.encode("utf-8", errors="surrogatepass") + b"\0")
    return digest.hexdigest()[:16]


def cached_embeddings(module_path: str, texts: np.ndarray, label: str) -> np.ndarray:
    """Embeddings [len(texts), dim] of `texts` by the module at `module_path`, memory-mapped from the cache."""
    path = cache_dir() / "embeddings" / module_fingerprint(module_path) / f"{texts_fingerprint(texts)}.npy"
    if not path.exists():
        _embed_to(path, module_path, texts, label)
    return np.load(path, mmap_mode="r")


def token_lengths(module, texts: np.ndarray) -> np.ndarray:
    """Tokens per text by the module's own tokenizer (its `tokenize`, where it has one), else characters.

    Sorting by tokens packs batches best: padded encoders then do almost no wasted work.
    """
    import tensorflow as tf
    tokenize = getattr(module, "tokenize", None)
    if tokenize is None:
        return np.array([len(t) for t in texts])
    return np.concatenate([tokenize(tf.constant(list(texts[i:i + 4096]))).row_lengths().numpy()
                           for i in range(0, len(texts), 4096)])


def length_ordered_batches(module, texts: np.ndarray, batch: int = BATCH):
    """(rows, vectors) per batch of similar-length texts, covering every row once."""
    import tensorflow as tf
    embed = tf.function(lambda b: module(b), input_signature=[tf.TensorSpec([None], tf.string)])
    order = np.argsort(token_lengths(module, texts), kind="stable")
    for start in range(0, len(texts), batch):
        rows = order[start:start + batch]
        yield rows, embed(tf.constant(list(texts[rows]))).numpy()


def embed_all(module, texts: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """Embeddings of `texts`, in their order, computed in length order."""
    out = None
    for rows, vectors in length_ordered_batches(module, np.asarray(texts, dtype=object), batch):
        out = np.empty((len(texts), vectors.shape[1]), np.float32) if out is None else out
        out[rows] = vectors
    return out


def _embed_to(path: Path, module_path: str, texts: np.ndarray, label: str) -> None:
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (ops a module may need)
    module = hub.load(module_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    out = None
    batches = length_ordered_batches(module, texts)
    for rows, vectors in tqdm(batches, total=-(-len(texts) // BATCH), desc=f"embedding {label}", unit="batch",
                              mininterval=1, disable=None):
        if out is None:    # memory-mapped: a full competition's embeddings need not fit in memory
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(texts), vectors.shape[1]))
        out[rows] = vectors
    out.flush()
    del out
    tmp.rename(path)
