"""Export a text encoder as a reusable TF2 SavedModel: what `hub.KerasLayer` loads and fine-tunes.

The hub-module protocol, which every module `make modules` builds follows:
- `__call__`: strings [B] -> float32 [B, D], the sentence embeddings; a module with dropout takes
  `training` (a Python bool, default False), which hub.KerasLayer passes when it fine-tunes: dropout
  then, and at training=False the same output as ever;
- `variables`, `trainable_variables`, `regularization_losses`: TF Hub's reusable-SavedModel API.
  A plain tf.Module computes `variables` as a property that is not saved, so
  `hub.KerasLayer(trainable=True)` then finds zero trainable weights and trains nothing; here
  they are stored as real attributes;
- `tokenize`: strings [B] -> integer ragged ids [B, (T)], the module's own tokens (sorting texts
  by their count packs batches best);
- `token_embeddings`: strings [B] -> float32 ragged [B, (T), D'], a vector per token, with the same
  row lengths as `tokenize` (what features = "tokens" caches and pools).
Modules from tfhub.dev, and local ones built before the token functions existed, have only the
first two; `has_token_functions` tells them apart.

The precision is chosen at call time where a module has `compute_dtypes` (a function returning the names it
takes, e.g. ["float32", "bfloat16"]; `compute_dtypes_of` reads them): `__call__`, `token_embeddings` and the
layer functions below then take `compute_dtype` (a Python string, default "float32"), in which the module runs
its matrix products; outputs stay float32. hub.KerasLayer passes it with `arguments={"compute_dtype": ...}`.

A module made of L stacked layers (MiniLM's 6 transformer layers) may also expose them for partial
fine-tuning (`LayerSplit`; `has_layer_functions` tells): `trainable_layers = n` caches the states below
the top n layers once and trains only the top n layers and the head on them.
- `layer_variables`: a list per layer, bottom first, of that layer's variables (among `variables`);
- `bottom_states(texts, n_top)`: strings [B] and n_top (an int32 scalar, 1..L) -> float32 ragged
  [B, (T), W], every token's state below the top n_top layers (n_top = L: the embeddings' output), in
  inference mode, with the row lengths of `tokenize`;
- `top_layers(states, lengths, n_top, training=False)`: those states padded to [B, T, W], the row lengths
  [B] (int32) and n_top -> float32 [B, T, W], the last layer's states (padding rows: anything), through
  the top n_top layers (their dropout when training; n_top = L: the embeddings' dropout first);
- `pool_states(states, lengths)`: last-layer states [B, T, W] -> [B, D], the module's own pooling, so that
  pool_states(top_layers(bottom_states(t, n), n)) = __call__(t) for every n;
- `embedding_variables`: the variables of no layer (the embeddings layer's), among them `word_embeddings`, the
  token table [V, W]; `embed_tokens(vectors, ids, lengths)`: its rows for token ids [B, T] from `tokenize`
  (gathered by the caller, so that a fine-tune gets a sparse gradient for the table), the ids and the row
  lengths [B] (int32) -> float32 [B, T, W], the embeddings layer's output, which top_layers(·, lengths, L)
  takes: full fine-tuning on ids tokenized once.
"""
from __future__ import annotations

import inspect
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import core  # noqa: F401  (environment for TensorFlow)
import tensorflow as tf

from core.claim import PREVIOUS

TOKEN_FUNCTIONS = ("tokenize", "token_embeddings")
LAYER_FUNCTIONS = ("layer_variables", "bottom_states", "top_layers", "pool_states")
ID_FUNCTIONS = ("embedding_variables", "word_embeddings", "embed_tokens")
COMPUTE_DTYPES = ("float32", "bfloat16")    # what the project's modules compute in when asked (models.precision)


@dataclass(frozen=True)
class LayerSplit:
    """A module's stacked layers, as the protocol's layer functions expose them (Python functions here)."""
    variables: list[list[tf.Variable]]   # each layer's variables, bottom first
    bottom_states: Callable              # (texts, n_top) -> ragged [B, (T), width]
    top_layers: Callable                 # (states, lengths, n_top, training) -> [B, T, width]
    pool_states: Callable                # (states, lengths) -> [B, D]
    width: int                           # W, a token state's size
    embedding_variables: list[tf.Variable] | None = None   # the variables of no layer
    word_embeddings: tf.Variable | None = None              # the token table [V, W], among them
    embed_tokens: Callable | None = None  # (table rows [B, T, W], ids [B, T], lengths [B]) -> the embeddings' output


def export_text_encoder(path: Path, encode, variables: list[tf.Variable], *, tokenize, token_embeddings,
                        trainable: list[tf.Variable] | None = None, assets: dict[str, object] | None = None,
                        layers: LayerSplit | None = None, compute_dtypes: tuple[str, ...] = ()) -> Path:
    """Save a text encoder as a hub module at `path`, atomically (the whole folder is replaced).

    `encode`, `tokenize`, `token_embeddings`: functions of a batch of strings [None], as the protocol above
    says; each is saved as a tf.function with that input signature (`encode` taking `training`: traced for both).
    `layers`: the module's stacked layers, exported as the layer functions (traced for every n_top, training).
    `compute_dtypes`: the precisions the functions take as `compute_dtype` (each traced for every one); none:
    the functions take no such argument.
    `variables` are all the module's variables; `trainable` those a fine-tune may change (all by default).
    `assets` keeps objects (vocabulary tables, tokenizers, tf.saved_model.Asset files) alive in the SavedModel.
    """
    obj = tf.train.Checkpoint()
    obj.variables = list(variables)
    obj.trainable_variables = list(variables if trainable is None else trainable)
    obj.regularization_losses = []
    for name, value in (assets or {}).items():
        setattr(obj, name, value)
    dtypes = [{"compute_dtype": d} for d in compute_dtypes] or [{}]
    trainings = [{"training": t} for t in (False, True)] if "training" in inspect.signature(encode).parameters \
        else [{}]
    obj.tokenize = _of_strings(tokenize)
    obj.token_embeddings = _traced(token_embeddings, [(_STRINGS, d) for d in dtypes])
    obj.__call__ = _traced(encode, [(_STRINGS, {**t, **d}) for t in trainings for d in dtypes])
    if compute_dtypes:
        obj.compute_dtypes = tf.function(lambda: tf.constant(list(compute_dtypes)), input_signature=[])
    if layers is not None:
        _export_layers(obj, layers, dtypes)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        tf.saved_model.save(obj, str(tmp))
        if (path / PREVIOUS).is_dir():         # the run a rebuild kept (core.claim) stays
            (path / PREVIOUS).rename(tmp / PREVIOUS)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


_STRINGS = tf.TensorSpec([None], tf.string)
# autograph=False below: the exported functions branch on tensors only through explicit tf.cond, and tracing
# without autograph's conversion takes a third less time (module builds, tests)


def _of_strings(fn) -> tf.types.experimental.GenericFunction:
    return _traced(fn, [(_STRINGS, {})])


def _traced(fn, calls: list[tuple]) -> tf.types.experimental.GenericFunction:
    """A tf.function traced for each (tensor spec or specs, Python keyword arguments): what the SavedModel keeps.
    One call without keyword arguments: a function of that input signature, as modules were saved before."""
    calls = [(specs if isinstance(specs, tuple) else (specs,), kwargs) for specs, kwargs in calls]
    if len(calls) == 1 and not calls[0][1]:
        return tf.function(fn, input_signature=list(calls[0][0]), autograph=False)
    function = tf.function(fn, autograph=False)
    for specs, kwargs in calls:
        function.get_concrete_function(*specs, **kwargs)
    return function


def _export_layers(obj, layers: LayerSplit, dtypes: list[dict]) -> None:
    states = (tf.TensorSpec([None, None, layers.width], tf.float32), tf.TensorSpec([None], tf.int32))
    n_top = tf.TensorSpec([], tf.int32)
    obj.layer_variables = [list(v) for v in layers.variables]
    obj.bottom_states = _traced(layers.bottom_states, [((_STRINGS, n_top), d) for d in dtypes])
    obj.top_layers = _traced(layers.top_layers, [((*states, n_top), {"training": t, **d})
                                                 for t in (False, True) for d in dtypes])
    obj.pool_states = _traced(layers.pool_states, [(states, {})])
    if layers.embed_tokens is not None:
        obj.embedding_variables = list(layers.embedding_variables)
        obj.word_embeddings = layers.word_embeddings
        obj.embed_tokens = _traced(layers.embed_tokens, [((
            tf.TensorSpec([None, None, layers.width], tf.float32), tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None], tf.int32)), {})])


def has_layer_functions(module) -> bool:
    """Whether a loaded module exposes its layers for partial fine-tuning (the layer functions above)."""
    return all(hasattr(module, name) for name in LAYER_FUNCTIONS)


def has_id_functions(module) -> bool:
    """Whether a loaded module takes token ids for full fine-tuning (ID_FUNCTIONS)."""
    return has_layer_functions(module) and all(hasattr(module, name) for name in ID_FUNCTIONS)


def compute_dtypes_of(module) -> tuple[str, ...]:
    """The precisions a loaded module computes in when asked (`compute_dtype`); () for one that takes none."""
    if not hasattr(module, "compute_dtypes"):
        return ()
    return tuple(d.decode() for d in module.compute_dtypes().numpy())


def saved_attributes(path: str | Path) -> frozenset[str]:
    """The names of the module's attributes (its functions, variable lists...) saved at `path`, read from its
    object graph without loading it (cache keys and the choice of a training path need them first)."""
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    except (OSError, ValueError):
        return frozenset()
    return frozenset(child.local_name for child in proto.meta_graphs[0].object_graph_def.nodes[0].children)


def takes_compute_dtype(path: str | Path) -> bool:
    """Whether the module saved at `path` has `compute_dtypes`."""
    return "compute_dtypes" in saved_attributes(path)


def takes_token_ids(path: str | Path) -> bool:
    """Whether the module saved at `path` can be fine-tuned whole on token ids (layer and id functions)."""
    return set(LAYER_FUNCTIONS + ID_FUNCTIONS) <= saved_attributes(path)


def has_token_functions(module, *names: str) -> bool:
    """Whether a loaded module has the protocol's token functions (`names`; both by default)."""
    return all(hasattr(module, name) for name in names or TOKEN_FUNCTIONS)
