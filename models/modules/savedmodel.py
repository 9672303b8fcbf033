"""Export a text encoder as a reusable TF2 SavedModel: what `hub.KerasLayer` loads and fine-tunes.

The hub-module protocol, which every module `make modules` builds follows:
- `__call__`: strings [B] -> float32 [B, D], the sentence embeddings;
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
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import core  # noqa: F401  (environment for TensorFlow)
import tensorflow as tf

TOKEN_FUNCTIONS = ("tokenize", "token_embeddings")


def export_text_encoder(path: Path, encode, variables: list[tf.Variable], *, tokenize, token_embeddings,
                        trainable: list[tf.Variable] | None = None, assets: dict[str, object] | None = None) -> Path:
    """Save a text encoder as a hub module at `path`, atomically (the whole folder is replaced).

    `encode`, `tokenize`, `token_embeddings`: functions of a batch of strings [None], as the protocol above
    says; each is saved as a tf.function with that input signature.
    `variables` are all the module's variables; `trainable` those a fine-tune may change (all by default).
    `assets` keeps objects (vocabulary tables, tokenizers, tf.saved_model.Asset files) alive in the SavedModel.
    """
    obj = tf.train.Checkpoint()
    obj.variables = list(variables)
    obj.trainable_variables = list(variables if trainable is None else trainable)
    obj.regularization_losses = []
    for name, value in (assets or {}).items():
        setattr(obj, name, value)
    obj.tokenize = _of_strings(tokenize)
    obj.token_embeddings = _of_strings(token_embeddings)
    obj.__call__ = _of_strings(encode)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        tf.saved_model.save(obj, str(tmp))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _of_strings(fn) -> tf.types.experimental.GenericFunction:
    return tf.function(fn, input_signature=[tf.TensorSpec([None], tf.string)])


def has_token_functions(module, *names: str) -> bool:
    """Whether a loaded module has the protocol's token functions (`names`; both by default)."""
    return all(hasattr(module, name) for name in names or TOKEN_FUNCTIONS)
