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

from core.errors import PipelineError
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
    from models.modules.savedmodel import has_token_functions
    if not has_token_functions(module, "tokenize"):
        return np.array([len(t) for t in texts])
    return np.concatenate([module.tokenize(tf.constant(list(texts[i:i + 4096]))).row_lengths().numpy()
                           for i in range(0, len(texts), 4096)])


def length_ordered_batches(module, texts: np.ndarray, batch: int = BATCH, output=None, lengths=None):
    """(rows, output) per batch of similar-length texts, covering every row once.

    output: the module function to run (default: the module itself, its sentence embeddings).
    """
    import tensorflow as tf
    call = output or module
    embed = tf.function(lambda b: call(b), input_signature=[tf.TensorSpec([None], tf.string)])
    order = np.argsort(token_lengths(module, texts) if lengths is None else lengths, kind="stable")
    for start in range(0, len(texts), batch):
        rows = order[start:start + batch]
        yield rows, embed(tf.constant(list(texts[rows])))


def embed_all(module, texts: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """Embeddings of `texts`, in their order, computed in length order."""
    out = None
    for rows, vectors in length_ordered_batches(module, np.asarray(texts, dtype=object), batch):
        out = np.empty((len(texts), vectors.shape[1]), np.float32) if out is None else out
        out[rows] = vectors.numpy()
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
        out[rows] = vectors.numpy()
    out.flush()
    del out
    tmp.rename(path)


def cached_token_embeddings(module_path: str, texts: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Every token's vector from the module's `token_embeddings`, cached like the sentence embeddings.

    Returns (values [tokens, dim] float16, memory-mapped; offsets [len(texts) + 1]): text i's tokens are
    values[offsets[i]:offsets[i + 1]]. Half precision halves the disk and page cache; heads compute in float32.
    """
    folder = cache_dir() / "tokens" / module_fingerprint(module_path)
    values, offsets = (folder / f"{texts_fingerprint(texts)}.{part}.npy" for part in ("values", "offsets"))
    if not offsets.exists():        # written last: its presence means the values are complete
        _embed_tokens_to(values, offsets, module_path, texts, label)
    return np.load(values, mmap_mode="r"), np.load(offsets)


def _embed_tokens_to(values_path: Path, offsets_path: Path, module_path: str, texts: np.ndarray, label: str) -> None:
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401
    from core.artifacts import write_npy
    from models.modules.savedmodel import has_token_functions
    module = hub.load(module_path)
    if not has_token_functions(module):
        raise PipelineError(f"module {module_path} has no token_embeddings/tokenize functions, which features = "
                            f"\"tokens\" needs (use-m3, minilm and word-vector modules have them when built by "
                            f"`make modules` since they were added); rebuild it: rm -rf {module_path} && make modules")
    lengths = token_lengths(module, texts)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values_path.parent.mkdir(parents=True, exist_ok=True)
    tmp, out = values_path.with_name(f".{values_path.name}.tmp"), None
    batches = length_ordered_batches(module, texts, BATCH, module.token_embeddings, lengths)
    for rows, ragged in tqdm(batches, total=-(-len(texts) // BATCH), desc=f"token embeddings {label}",
                             unit="batch", mininterval=1, disable=None):
        flat, counts = ragged.flat_values.numpy(), ragged.row_lengths().numpy()
        if not np.array_equal(counts, lengths[rows]):
            raise PipelineError(f"module {module_path}: token_embeddings and tokenize disagree on token counts")
        if out is None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(int(offsets[-1]), flat.shape[1]))
        starts_in_batch = np.cumsum(counts) - counts
        out[np.repeat(offsets[rows] - starts_in_batch, counts) + np.arange(len(flat))] = flat
    out.flush()
    del out
    tmp.rename(values_path)
    write_npy(offsets_path, offsets)
