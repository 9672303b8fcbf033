"""How data reaches a network: batches of similar length, datasets streamed from memory-mapped caches, and the one
`predict` that computes in length order and answers in row order.

Texts run from a few tokens to hundreds: a padded encoder (a transformer, a token head) wastes little work when
each batch holds texts of similar length, so every path orders by length through `length_batches`:
- module calls over a whole text set (embedding and token caches): at most `batch` texts and at most `tokens`
  padded tokens a call, so a transformer's activations stay bounded whatever the longest texts are;
- training batches (`bucketed`): ties broken at random, the full batches in random order, the short one last;
- prediction (`predict`): length order, answers put back in row order.
"""
from __future__ import annotations

import numpy as np

BATCH = 1024   # texts per module call at most
# and at most this many tokens, padded: about 100 questions. A transformer's activations then stay in the CPU's
# caches: 2,048 against 32,768 tokens a call embedded 2.4x the texts a second with mpnet, 1.6x with MiniLM and
# 1.35x with USE m3 (2 cores, 2026-12-07, bench history)
TOKENS_PER_CALL = 2_048
SHUFFLE_BATCHES = 64    # training batches shuffled anew each epoch, beyond the fold's fixed random batch order


def length_batches(lengths: np.ndarray, batch: int, tokens: int | None = None,
                   rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Positions into `lengths` in batches of similar length, covering each once: in length order, at most
    `batch` a batch and, with `tokens`, at most that many tokens once padded to the batch's longest. With `rng`:
    equal lengths in random order, and the full batches in random order with the short one last."""
    order = np.lexsort((rng.random(len(lengths)), lengths)) if rng is not None else np.argsort(lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = int(lengths[order[min(start + batch, len(order)) - 1]])     # sorted: the last is the longest
        size = batch if tokens is None else max(1, min(batch, tokens // max(longest, 1)))
        batches.append(order[start:start + size])
        start += size
    if rng is not None:
        full = [b for b in batches if len(b) == batch]
        batches = [full[i] for i in rng.permutation(len(full))] + [b for b in batches if len(b) < batch]
    return batches


def bucketed(rows: np.ndarray, lengths: np.ndarray, batch: int, seed: int) -> np.ndarray:
    """`rows` ordered so that each `batch` of them in turn is one of `length_batches` (random ties and order):
    read in order, batch by batch, each batch is padded to little beyond its own texts."""
    return np.concatenate([rows[b] for b in length_batches(lengths[rows], batch, rng=np.random.default_rng(seed))]
                          or [rows[:0]])


def token_lengths(module, texts: np.ndarray) -> np.ndarray:
    """Tokens per text by the module's own tokenizer (its `tokenize`, where it has one), else characters."""
    import tensorflow as tf
    from models.modules.savedmodel import has_token_functions
    if not has_token_functions(module, "tokenize"):
        return np.array([len(t) for t in texts])
    return np.concatenate([module.tokenize(tf.constant(list(texts[i:i + 4096]))).row_lengths().numpy()
                           for i in range(0, len(texts), 4096)] or [np.zeros(0, np.int64)])


def module_calls(module, texts: np.ndarray, function=None, lengths=None, batch: int = BATCH):
    """(rows, output) of each module call over `texts` in `length_batches`, covering every row once.

    function: the module function to run (default: the module itself, its sentence embeddings).
    """
    import tensorflow as tf
    call = function or module
    run = tf.function(lambda b: call(b), input_signature=[tf.TensorSpec([None], tf.string)])
    lengths = token_lengths(module, texts) if lengths is None else lengths
    for rows in length_batches(lengths, batch, TOKENS_PER_CALL):
        yield rows, run(tf.constant(list(texts[rows])))


def embed_all(module, texts: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """Embeddings of `texts` in memory, in their order (computed in length order)."""
    out = None
    for rows, vectors in module_calls(module, np.asarray(texts, dtype=object), batch=batch):
        out = np.empty((len(texts), vectors.shape[1]), np.float32) if out is None else out
        out[rows] = vectors.numpy()
    return out


# ---- datasets -------------------------------------------------------------------------------------------------

def streamed(make_inputs, inputs_signature, rows: np.ndarray, y, batch_size: int,
             seed: int | None = None, sized: bool = True):
    """Batches (make_inputs(batch rows), y) built batch by batch from memory-mapped caches: only the batch in
    hand is read, so a cache may be larger than memory. With a seed, the rows are shuffled anew every
    epoch; without, they keep their order (evaluation, prediction, length-ordered training)."""
    import tensorflow as tf
    rng = np.random.default_rng(seed)

    def batches():
        order = rng.permutation(rows) if seed is not None else rows
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            yield (make_inputs(chosen), y[chosen]) if y is not None else (make_inputs(chosen),)

    signature = (inputs_signature, tf.TensorSpec([None], tf.float32)) if y is not None else (inputs_signature,)
    data = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # its length known, Keras can run several steps per call (steps_per_execution) and size its bars
    if sized:
        data = data.apply(tf.data.experimental.assert_cardinality(-(-len(rows) // batch_size)))
    return data.prefetch(2)


def embedding_dataset(parts: list[np.ndarray], rows: np.ndarray, y, batch_size: int, seed: int | None = None):
    """Batches of cached sentence embeddings [B, sum of dims]: each module's cache read for the batch's rows
    and laid side by side, never the whole matrix in memory."""
    import tensorflow as tf
    dim = sum(p.shape[1] for p in parts)
    return streamed(lambda chosen: np.concatenate([p[chosen] for p in parts], axis=1).astype(np.float32, copy=False),
                    tf.TensorSpec([None, dim], tf.float32), rows, y, batch_size, seed)


def token_dataset(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray, y, batch_size: int,
                  seed: int | None = None):
    """Batches ((states [B, T, D] padded to the batch's longest, lengths [B]), y) read from a token cache; from
    a token-id cache (values [tokens] int32) the batches' first part is the ids [B, T], padded with 0."""
    import tensorflow as tf
    row_shape, dtype = tuple(values.shape[1:]), (np.int32 if len(values.shape) == 1 else np.float16)

    def states(chosen):
        lengths = (offsets[chosen + 1] - offsets[chosen]).astype(np.int32)
        out = np.zeros((len(chosen), max(int(lengths.max()), 1), *row_shape), dtype)
        for i, (row, n) in enumerate(zip(chosen, lengths)):
            out[i, :n] = values[offsets[row]:offsets[row] + n]
        return out, lengths

    inputs = (tf.TensorSpec([None, None, *row_shape], dtype), tf.TensorSpec([None], tf.int32))
    # unsized: the token heads' figures were measured so, and a known length changed them (fold 0 on the sample:
    # F1 0.6497 -> 0.6400); they need no steps_per_execution
    return streamed(states, inputs, rows, y, batch_size, seed, sized=False)


def text_dataset(texts: np.ndarray, rows: np.ndarray, y, batch_size: int):
    """Batches of texts (strings [B]), in the order of `rows`: for a module that runs inside the step."""
    import tensorflow as tf
    return streamed(lambda chosen: texts[chosen].astype(str), tf.TensorSpec([None], tf.string), rows, y, batch_size)


def predict(model, dataset_of, rows: np.ndarray, batch_size: int, lengths: np.ndarray | None = None) -> np.ndarray:
    """The model's probabilities for `rows`, in their order; `dataset_of(rows, batch_size)` makes the inputs'
    dataset (no labels). With `lengths` (one per row of the data) they are computed in length order: the least
    padding."""
    order = np.argsort(lengths[rows], kind="stable") if lengths is not None else np.arange(len(rows))
    out = np.empty(len(rows), np.float32)
    out[order] = model.predict(dataset_of(rows[order], batch_size), verbose=0).reshape(-1)
    return out
