"""Frozen modules are embedded once: each distinct text set once per module, cached on disk, memory-mapped.

Training a head on a frozen module through the hub layer re-embeds every text every epoch of
every fold; the cache does it once, and the head then trains on plain float arrays. Keyed by
the module's weights (its variables index, which holds a checksum per tensor), the texts and the
precision the module computed in (`compute_dtype`, for modules that take one: float32 and bfloat16
runs never read each other's files). Token ids are cached the same way, for fine-tuning on ids.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from core.data import texts_fingerprint
from core.errors import PipelineError
from core.paths import cache_dir, workspace
from models.precision import call_arguments, module_dtype

BATCH = 1024   # texts per module call at most
# and at most this many tokens, padded: about 100 questions. A transformer's activations then stay in the CPU's
# caches: 2,048 against 32,768 tokens a call embedded 2.4x the texts a second with mpnet, 1.6x with MiniLM and
# 1.35x with USE m3 (2 cores, 2026-12-07, bench history)
TOKENS_PER_CALL = 2_048


def module_fingerprint(module_path: str) -> str:
    index = Path(module_path) / "variables" / "variables.index"
    data = index.read_bytes() if index.exists() else module_path.encode()
    return hashlib.sha256(data).hexdigest()[:16]


def cached_embeddings(module_path: str, texts: np.ndarray, label: str, compute_dtype: str = "float32") -> np.ndarray:
    """Embeddings [len(texts), dim] of `texts` by the module at `module_path`, memory-mapped from the cache."""
    dtype = module_dtype(module_path, compute_dtype)
    path = embeddings_path(module_path, texts, dtype)
    if not path.exists():
        _embed_to(path, module_path, texts, label, dtype)
    return np.load(path, mmap_mode="r")


def embeddings_path(module_path: str, texts: np.ndarray, compute_dtype: str) -> Path:
    folder = cache_dir() / "embeddings" / module_fingerprint(module_path)
    return (folder if compute_dtype == "float32" else folder / compute_dtype) / f"{texts_fingerprint(texts)}.npy"


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


def call_rows(lengths: np.ndarray, batch: int = BATCH, tokens: int = TOKENS_PER_CALL) -> list[np.ndarray]:
    """The rows of each module call: texts in length order, at most `batch` of them and at most `tokens`
    tokens once padded to the call's longest, so that a padded encoder's activations (its attention is
    texts x heads x length^2) stay bounded whatever the longest texts are."""
    order = np.argsort(lengths, kind="stable")
    calls, start = [], 0
    while start < len(order):
        longest = int(lengths[order[min(start + batch, len(order)) - 1]])   # sorted: the last is the longest
        size = max(1, min(batch, tokens // max(longest, 1)))
        calls.append(order[start:start + size])
        start += size
    return calls


def length_ordered_batches(module, texts: np.ndarray, batch: int = BATCH, output=None, lengths=None):
    """(rows, output) per module call over similar-length texts (`call_rows`), covering every row once.

    output: the module function to run (default: the module itself, its sentence embeddings).
    """
    import tensorflow as tf
    call = output or module
    embed = tf.function(lambda b: call(b), input_signature=[tf.TensorSpec([None], tf.string)])
    for rows in call_rows(token_lengths(module, texts) if lengths is None else lengths, batch):
        yield rows, embed(tf.constant(list(texts[rows])))


def progress(batches, texts: int, label: str):
    """The batches, with a bar counting texts (on a terminal; quiet in logs)."""
    with tqdm(total=texts, desc=label, unit="text", mininterval=1, disable=None) as bar:
        for rows, output in batches:
            yield rows, output
            bar.update(len(rows))


def embed_all(module, texts: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """Embeddings of `texts`, in their order, computed in length order."""
    out = None
    for rows, vectors in length_ordered_batches(module, np.asarray(texts, dtype=object), batch):
        out = np.empty((len(texts), vectors.shape[1]), np.float32) if out is None else out
        out[rows] = vectors.numpy()
    return out


def _embed_to(path: Path, module_path: str, texts: np.ndarray, label: str, compute_dtype: str) -> None:
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (ops a module may need)
    from core.artifacts import open_memmap_preallocated
    module = hub.load(module_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    out = None
    arguments = call_arguments(compute_dtype)
    batches = length_ordered_batches(module, texts, output=lambda b: module(b, **arguments))
    for rows, vectors in progress(batches, len(texts), f"embedding {label}"):
        if out is None:    # memory-mapped: a full competition's embeddings need not fit in memory
            out = open_memmap_preallocated(tmp, np.float32, (len(texts), vectors.shape[1]))
        out[rows] = vectors.numpy()
    out.flush()
    del out
    tmp.rename(path)


def cached_token_embeddings(module_path: str, texts: np.ndarray, label: str, function: str = "token_embeddings",
                            precision: str = "float16", budget_gb: float | None = None, compute_dtype: str = "float32",
                            **arguments) -> tuple[np.ndarray, np.ndarray]:
    """Every token's vector from the module's `token_embeddings`, cached like the sentence embeddings.

    Returns (values [tokens, dim] read as float16, memory-mapped; offsets [len(texts) + 1]): text i's tokens
    are values[offsets[i]:offsets[i + 1]]. Half precision halves the disk and page cache; heads compute in
    float32. precision "int8" halves it again (each token's vector scaled to int8 by its largest value; read
    back as float16 through `Int8Tokens`): MiniLM's tokens of the whole Quora competition take some 23 GB in
    float16, over a kernel's 20 GB disk. A cache that would take the workspace over `budget_gb` is refused
    before it is written. `function`, `arguments`: another per-token function of the module and its Python
    arguments (bottom_states, n_top=2: the states below its top 2 layers), cached in a folder of its own.
    `compute_dtype`: the precision the module computes in, where it takes one (part of the folder's name).
    """
    if precision not in TOKEN_PRECISIONS:
        raise PipelineError(f"token precision {precision!r} is not one of {', '.join(TOKEN_PRECISIONS)}")
    arguments = {**arguments, **call_arguments(module_dtype(module_path, compute_dtype))}
    folder = cache_dir() / "tokens" / module_fingerprint(module_path)
    options = {**arguments, **({"precision": precision} if precision != "float16" else {})}
    if function != "token_embeddings" or options:
        folder = folder / ".".join([function] + [f"{k}={v}" for k, v in sorted(options.items())])
    stem = texts_fingerprint(texts)
    values, offsets, scales = (folder / f"{stem}.{part}.npy" for part in ("values", "offsets", "scales"))
    if not offsets.exists():        # written last: its presence means the values are complete
        _embed_tokens_to(values, offsets, module_path, texts, label, function, arguments, precision, budget_gb)
    if precision == "int8":
        return Int8Tokens(np.load(values, mmap_mode="r"), np.load(scales, mmap_mode="r")), np.load(offsets)
    return np.load(values, mmap_mode="r"), np.load(offsets)


TOKEN_PRECISIONS = ("float16", "int8")


def cached_token_ids(module_path: str, texts: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """The module's token ids of `texts` (its `tokenize`), computed once and cached: (ids [tokens] int32,
    memory-mapped; offsets [len(texts) + 1]), text i's ids being ids[offsets[i]:offsets[i + 1]]. Fine-tuning
    on ids tokenizes each text once, not in every step of every epoch and fold."""
    folder = cache_dir() / "tokens" / module_fingerprint(module_path) / "ids"
    stem = texts_fingerprint(texts)
    values, offsets = folder / f"{stem}.ids.npy", folder / f"{stem}.offsets.npy"
    if not offsets.exists():        # written last: its presence means the ids are complete
        _tokenize_to(values, offsets, module_path, texts, label)
    return np.load(values, mmap_mode="r"), np.load(offsets)


def _tokenize_to(values_path: Path, offsets_path: Path, module_path: str, texts: np.ndarray, label: str) -> None:
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401
    from core.artifacts import write_npy
    module = hub.load(module_path)
    chunks, lengths = [], []
    with tqdm(total=len(texts), desc=f"token ids {label}", unit="text", mininterval=1, disable=None) as bar:
        for start in range(0, len(texts), 4096):
            ids = module.tokenize(tf.constant(list(texts[start:start + 4096])))
            chunks.append(ids.flat_values.numpy().astype(np.int32))
            lengths.append(ids.row_lengths().numpy())
            bar.update(len(lengths[-1]))
    write_npy(values_path, np.concatenate(chunks) if chunks else np.zeros(0, np.int32))
    write_npy(offsets_path, np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64))


class Int8Tokens:
    """An int8 token cache read as float16: tokens[a:b] is the int8 rows a..b times each row's scale."""

    def __init__(self, quantized: np.ndarray, scales: np.ndarray):
        self.quantized, self.scales, self.shape, self.dtype = quantized, scales, quantized.shape, np.dtype(np.float16)

    def __getitem__(self, rows) -> np.ndarray:
        return self.quantized[rows].astype(np.float16) * self.scales[rows][:, None]


def quantize(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row scaled so that its largest magnitude is 127: (int8 rows, float16 scales)."""
    scales = np.maximum(np.abs(flat).max(axis=1), 1e-8) / 127
    return np.round(flat / scales[:, None]).astype(np.int8), scales.astype(np.float16)


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under `folder`; links (a shared models/hub) are not followed."""
    return sum(os.lstat(os.path.join(root, f)).st_size for root, _, files in os.walk(folder) for f in files)


def check_budget(nbytes: int, what: str, budget_gb: float | None) -> None:
    """Refuse a cache that would take the workspace over its disk budget ([workspace] disk_budget_gb)."""
    if budget_gb is None:
        return
    used = folder_bytes(workspace())
    if used + nbytes > budget_gb * 2 ** 30:
        raise PipelineError(f"{what} needs {nbytes / 2 ** 30:.1f} GB and the workspace {workspace()} already holds "
                            f"{used / 2 ** 30:.1f} GB of its {budget_gb:g} GB disk budget ([workspace] "
                            f"disk_budget_gb). Halve a token cache with token_precision = \"int8\" in the model's "
                            f"table, train fewer cached models at once, or raise the budget")


def _embed_tokens_to(values_path: Path, offsets_path: Path, module_path: str, texts: np.ndarray, label: str,
                     function: str = "token_embeddings", arguments: dict | None = None, precision: str = "float16",
                     budget_gb: float | None = None) -> None:
    """Fill a token cache. A pass of bottom_states also fills the module's sentence-embedding cache of the same
    texts, if absent: the top layers and pooling on the states in hand cost n_top / L of another pass, and
    compute exactly what the module's own call does (a frozen member of the same module then needs no pass)."""
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401
    from core.artifacts import open_memmap_preallocated, write_npy
    from models.modules.savedmodel import has_token_functions
    module = hub.load(module_path)
    if not has_token_functions(module, "tokenize", function):
        raise PipelineError(f"module {module_path} has no {function}/tokenize functions, which features = "
                            f"\"tokens\" needs (use-m3, minilm and word-vector modules have them when built by "
                            f"`make modules` since they were added); rebuild it: rm -rf {module_path} && make modules")
    lengths = token_lengths(module, texts)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values_path.parent.mkdir(parents=True, exist_ok=True)
    tmp, out, scales = values_path.with_name(f".{values_path.name}.tmp"), None, None
    scales_path = values_path.with_name(values_path.name.replace(".values.", ".scales."))
    per_token = getattr(module, function)
    batches = length_ordered_batches(module, texts, BATCH, lambda b: per_token(b, **(arguments or {})), lengths)
    sentences = SentencesAlongside(module, module_path, texts, arguments) if function == "bottom_states" else None
    for rows, ragged in progress(batches, len(texts), f"token embeddings {label}"):
        if sentences:
            sentences.add(rows, ragged)
        flat, counts = ragged.flat_values.numpy(), ragged.row_lengths().numpy()
        if not np.array_equal(counts, lengths[rows]):
            raise PipelineError(f"module {module_path}: {function} and tokenize disagree on token counts")
        if out is None:
            shape = (int(offsets[-1]), flat.shape[1])
            dtype = np.int8 if precision == "int8" else np.float16
            check_budget(shape[0] * (shape[1] * np.dtype(dtype).itemsize + (2 if precision == "int8" else 0)),
                         f"the {precision} token cache of {Path(module_path).name} for {len(texts):,} {label} texts",
                         budget_gb)
            out = open_memmap_preallocated(tmp, dtype, shape)
            if precision == "int8":
                scales = open_memmap_preallocated(scales_path, np.float16, (shape[0],))
        starts_in_batch = np.cumsum(counts) - counts
        where = np.repeat(offsets[rows] - starts_in_batch, counts) + np.arange(len(flat))
        if precision == "int8":
            out[where], scales[where] = quantize(flat)
        else:
            out[where] = flat
    out.flush()
    if scales is not None:
        scales.flush()
    del out, scales
    tmp.rename(values_path)
    write_npy(offsets_path, offsets)
    if sentences:
        sentences.finish()


class SentencesAlongside:
    """The sentence embeddings of a bottom_states pass, written to the module's embedding cache (when absent)."""

    def __init__(self, module, module_path: str, texts: np.ndarray, arguments: dict):
        from models.modules.savedmodel import has_layer_functions
        dtype = arguments.get("compute_dtype", "float32")
        self.path = embeddings_path(module_path, texts, dtype)
        self.active = has_layer_functions(module) and not self.path.exists()
        self.module, self.n, self.dtype, self.out = module, arguments["n_top"], call_arguments(dtype), None
        self.tmp, self.size = self.path.with_name(f".{self.path.name}.tmp"), len(texts)

    def __bool__(self) -> bool:
        return self.active

    def add(self, rows: np.ndarray, states) -> None:
        import tensorflow as tf
        from core.artifacts import open_memmap_preallocated
        lengths = tf.cast(states.row_lengths(), tf.int32)
        top = self.module.top_layers(states.to_tensor(), lengths, self.n, **self.dtype)
        vectors = self.module.pool_states(top, lengths).numpy()
        if self.out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.out = open_memmap_preallocated(self.tmp, np.float32, (self.size, vectors.shape[1]))
        self.out[rows] = vectors

    def finish(self) -> None:
        if self.out is None:                   # no texts
            return
        self.out.flush()
        del self.out
        self.tmp.rename(self.path)
