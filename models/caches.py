"""What a module computes once per text, cached on disk and memory-mapped: sentence embeddings (frozen heads),
per-token vectors (token heads), the states below a module's top layers (partial fine-tuning) and token ids (full
fine-tuning). Training a head through the module would compute them again every epoch of every fold.

One helper serves the four (`Entry`): a key (module, texts, what is computed and how) names a folder and a stem;
the entry's parts are written under temporary names and renamed, its completion marker (the last part) last, so a
killed run never leaves an entry that looks whole. An entry is checked when it is read (each part readable whole,
rows consistent with the texts); one that fails is computed again, never used. Keys hold the module's weights
(its variables index, a checksum per tensor), the texts and the precision it computed in (models.precision:
float32 and bfloat16 runs never read each other's files).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from core.artifacts import open_memmap_preallocated, read_npy, write_npy
from core.data import texts_fingerprint
from core.errors import PipelineError
from core.run import Run
from models.batches import BATCH, module_calls, token_lengths
from models.handles import frozen, module_fingerprint
from models.precision import cache_key, call_arguments, module_dtype

TOKEN_PRECISIONS = ("float16", "int8")


@dataclass(frozen=True)
class Entry:
    """One cached computation: <cache>/<family>/<module>/[<function>.<key=value>...]/<texts>.<part>.npy."""
    folder: Path
    stem: str
    parts: tuple[str, ...]          # the files, the completion marker last; "" is the file <stem>.npy

    @classmethod
    def of(cls, cache: Path, family: str, module_path: str, texts: np.ndarray, parts: tuple[str, ...],
           function: str = "", options: dict | None = None) -> "Entry":
        folder = cache / family / module_fingerprint(module_path)
        if function or options:
            folder = folder / ".".join([function] + [f"{k}={v}" for k, v in sorted((options or {}).items())])
        return cls(folder, texts_fingerprint(texts), parts)

    def path(self, part: str) -> Path:
        return self.folder / (f"{self.stem}.{part}.npy" if part else f"{self.stem}.npy")

    def temporary(self, part: str) -> Path:
        return self.path(part).with_name(f".{self.path(part).name}.tmp")

    def complete(self) -> bool:
        return self.path(self.parts[-1]).exists()

    def writer(self, part: str, dtype, shape: tuple[int, ...]) -> np.memmap:
        """A part to fill, memory-mapped under its temporary name, its disk space reserved first."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return open_memmap_preallocated(self.temporary(part), dtype, shape)

    def commit(self, part: str, array: np.ndarray | None = None) -> None:
        """A part made whole: a written array, or the filled writer (flushed by its owner), renamed into place."""
        if array is not None:
            write_npy(self.path(part), array)
        else:
            self.temporary(part).rename(self.path(part))

    def read(self, part: str, rows: int | None = None) -> np.ndarray:
        return read_npy(self.path(part), rows=rows, mmap=True)

    def discard(self) -> None:
        for part in self.parts:
            self.path(part).unlink(missing_ok=True)
            self.temporary(part).unlink(missing_ok=True)


def cached(entry: Entry, compute, read):
    """read(entry) of a complete entry that passes its checks; else compute(entry) first (a damaged entry is
    discarded and computed again, with a line saying why)."""
    if entry.complete():
        try:
            return read(entry)
        except PipelineError as e:
            print(f"{entry.folder}: a cache entry failed its check ({e}); computing it again", flush=True)
            entry.discard()
    compute(entry)
    return read(entry)


def progress(batches, texts: int, label: str):
    """The batches, with a bar counting texts (on a terminal; quiet in logs)."""
    with tqdm(total=texts, desc=label, unit="text", mininterval=1, disable=None) as bar:
        for rows, output in batches:
            yield rows, output
            bar.update(len(rows))


# ---- sentence embeddings: [texts, dim] float32 ----------------------------------------------------------------

def sentence_entry(run: Run, module_path: str, texts: np.ndarray, dtype: str) -> Entry:
    key = cache_key(dtype)
    return Entry.of(run.cache_dir, "embeddings", module_path, texts, ("",), "sentences" if key else "", key)


def cached_embeddings(run: Run, module_path: str, texts: np.ndarray, label: str,
                      compute_dtype: str = "float32") -> np.ndarray:
    """Embeddings [len(texts), dim] of `texts` by the module at `module_path`, memory-mapped from the cache."""
    dtype = module_dtype(module_path, compute_dtype)

    def compute(entry):
        module = frozen(module_path)
        arguments = call_arguments(dtype)
        out = None
        for rows, vectors in progress(module_calls(module, texts, lambda b: module(b, **arguments)), len(texts),
                                      f"embedding {label}"):
            if out is None:    # memory-mapped: a full competition's embeddings need not fit in memory
                out = entry.writer("", np.float32, (len(texts), vectors.shape[1]))
            out[rows] = vectors.numpy()
        out.flush()
        del out
        entry.commit("")

    return cached(sentence_entry(run, module_path, texts, dtype), compute, lambda entry: entry.read("", len(texts)))


# ---- per-token vectors: values [tokens, dim] float16 or int8, offsets [texts + 1] --------------------------------

def cached_token_embeddings(run: Run, module_path: str, texts: np.ndarray, label: str,
                            function: str = "token_embeddings", precision: str = "float16",
                            budget_gb: float | None = None, compute_dtype: str = "float32",
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
    dtype = module_dtype(module_path, compute_dtype)
    options = {**arguments, **cache_key(dtype), **({"precision": precision} if precision != "float16" else {})}
    parts = ("values", "scales", "offsets") if precision == "int8" else ("values", "offsets")
    entry = Entry.of(run.cache_dir, "tokens", module_path, texts, parts,
                     function if function != "token_embeddings" or options else "", options)

    def compute(entry):
        _fill_tokens(run, entry, module_path, texts, label, function, {**arguments, **call_arguments(dtype)},
                     precision, budget_gb)

    def read(entry):
        offsets = entry.read("offsets", len(texts) + 1)
        values = entry.read("values", int(offsets[-1]) if len(offsets) else 0)
        if precision == "int8":
            return Int8Tokens(values, entry.read("scales", len(values))), offsets
        return values, offsets

    return cached(entry, compute, read)


def _fill_tokens(run: Run, entry: Entry, module_path: str, texts: np.ndarray, label: str, function: str,
                 arguments: dict, precision: str, budget_gb: float | None) -> None:
    """Fill a token cache. A pass of bottom_states also fills the module's sentence-embedding cache of the same
    texts, if absent: the top layers and pooling on the states in hand cost n_top / L of another pass, and
    compute exactly what the module's own call does (a frozen member of the same module then needs no pass)."""
    from models.modules.savedmodel import has_token_functions
    module = frozen(module_path)
    if not has_token_functions(module, "tokenize", function):
        raise PipelineError(f"module {module_path} has no {function}/tokenize functions, which features = "
                            f"\"tokens\" needs (use-m3, minilm and word-vector modules have them when built by "
                            f"`make modules` since they were added); rebuild it: rm -rf {module_path} && make modules")
    lengths = token_lengths(module, texts)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    out, scales = None, None
    per_token = getattr(module, function)
    calls = module_calls(module, texts, lambda b: per_token(b, **arguments), lengths)
    sentences = SentencesAlongside(run, module, module_path, texts, arguments) if function == "bottom_states" \
        else None
    for rows, ragged in progress(calls, len(texts), f"token embeddings {label}"):
        if sentences:
            sentences.add(rows, ragged)
        flat, counts = ragged.flat_values.numpy(), ragged.row_lengths().numpy()
        if not np.array_equal(counts, lengths[rows]):
            raise PipelineError(f"module {module_path}: {function} and tokenize disagree on token counts")
        if out is None:
            shape = (int(offsets[-1]), flat.shape[1])
            dtype = np.int8 if precision == "int8" else np.float16
            check_budget(run.workspace, shape[0] * (shape[1] * np.dtype(dtype).itemsize
                                                    + (2 if precision == "int8" else 0)),
                         f"the {precision} token cache of {Path(module_path).name} for {len(texts):,} {label} texts",
                         budget_gb)
            out = entry.writer("values", dtype, shape)
            if precision == "int8":
                scales = entry.writer("scales", np.float16, (shape[0],))
        starts_in_batch = np.cumsum(counts) - counts
        where = np.repeat(offsets[rows] - starts_in_batch, counts) + np.arange(len(flat))
        if precision == "int8":
            out[where], scales[where] = quantize(flat)
        else:
            out[where] = flat
    for part, array in (("values", out), ("scales", scales)):
        if array is not None:
            array.flush()
            del array
            entry.commit(part)
    out = scales = None
    entry.commit("offsets", offsets)
    if sentences:
        sentences.finish()


class SentencesAlongside:
    """The sentence embeddings of a bottom_states pass, written to the module's embedding cache (when absent)."""

    def __init__(self, run: Run, module, module_path: str, texts: np.ndarray, arguments: dict):
        from models.modules.savedmodel import has_layer_functions
        dtype = arguments.get("compute_dtype", "float32")
        self.entry = sentence_entry(run, module_path, texts, dtype)
        self.active = has_layer_functions(module) and not self.entry.complete()
        self.module, self.n, self.dtype, self.out = module, arguments["n_top"], call_arguments(dtype), None
        self.size = len(texts)

    def __bool__(self) -> bool:
        return self.active

    def add(self, rows: np.ndarray, states) -> None:
        import tensorflow as tf
        lengths = tf.cast(states.row_lengths(), tf.int32)
        top = self.module.top_layers(states.to_tensor(), lengths, self.n, **self.dtype)
        vectors = self.module.pool_states(top, lengths).numpy()
        if self.out is None:
            self.out = self.entry.writer("", np.float32, (self.size, vectors.shape[1]))
        self.out[rows] = vectors

    def finish(self) -> None:
        if self.out is None:                   # no texts
            return
        self.out.flush()
        self.out = None
        self.entry.commit("")


# ---- token ids: ids [tokens] int32, offsets [texts + 1] ----------------------------------------------------------

def cached_token_ids(run: Run, module_path: str, texts: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """The module's token ids of `texts` (its `tokenize`), computed once and cached: (ids [tokens] int32,
    memory-mapped; offsets [len(texts) + 1]), text i's ids being ids[offsets[i]:offsets[i + 1]]. Fine-tuning
    on ids tokenizes each text once, not in every step of every epoch and fold."""
    def compute(entry):
        import tensorflow as tf
        module = frozen(module_path)
        chunks, lengths = [], []
        with tqdm(total=len(texts), desc=f"token ids {label}", unit="text", mininterval=1, disable=None) as bar:
            for start in range(0, len(texts), 4096):
                ids = module.tokenize(tf.constant(list(texts[start:start + 4096])))
                chunks.append(ids.flat_values.numpy().astype(np.int32))
                lengths.append(ids.row_lengths().numpy())
                bar.update(len(lengths[-1]))
        entry.commit("ids", np.concatenate(chunks) if chunks else np.zeros(0, np.int32))
        entry.commit("offsets", np.concatenate([[0], np.cumsum(np.concatenate(lengths or [[]]))]).astype(np.int64))

    def read(entry):
        offsets = entry.read("offsets", len(texts) + 1)
        return entry.read("ids", int(offsets[-1]) if len(offsets) else 0), offsets

    return cached(Entry.of(run.cache_dir, "tokens", module_path, texts, ("ids", "offsets"), "ids"), compute, read)


# ---- storage --------------------------------------------------------------------------------------------------

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


def check_budget(workspace: Path, nbytes: int, what: str, budget_gb: float | None) -> None:
    """Refuse a cache that would take the workspace over its disk budget ([workspace] disk_budget_gb)."""
    if budget_gb is None:
        return
    used = folder_bytes(workspace)
    if used + nbytes > budget_gb * 2 ** 30:
        raise PipelineError(f"{what} needs {nbytes / 2 ** 30:.1f} GB and the workspace {workspace} already holds "
                            f"{used / 2 ** 30:.1f} GB of its {budget_gb:g} GB disk budget ([workspace] "
                            f"disk_budget_gb). Halve a token cache with token_precision = \"int8\" in the model's "
                            f"table, train fewer cached models at once, or raise the budget")
