"""Export a text encoder as a reusable TF2 SavedModel: what `hub.KerasLayer` loads and fine-tunes.

TF Hub's reusable-SavedModel API asks the saved object for `__call__` plus the attributes
`variables`, `trainable_variables` and `regularization_losses`. A plain tf.Module computes
`variables` as a property that is not saved, so `hub.KerasLayer(trainable=True)` then finds
zero trainable weights and trains nothing; here they are stored as real attributes.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import core  # noqa: F401  (environment for TensorFlow)
import tensorflow as tf


def export_text_encoder(path: Path, encode, variables: list[tf.Variable], trainable: list[tf.Variable] | None = None,
                        assets: dict[str, object] | None = None, extra: dict[str, object] | None = None) -> Path:
    """Save `encode` (a batch of strings [None] -> float32 [None, dim]) as a hub module at `path`, atomically.

    `variables` are all the module's variables; `trainable` those a fine-tune may change (all by default).
    `assets` keeps objects (vocabulary tables, tf.saved_model.Asset files) alive in the SavedModel;
    `extra` attaches more tracked attributes (for example a tokenizer function other code may call).
    """
    obj = tf.train.Checkpoint()
    obj.variables = list(variables)
    obj.trainable_variables = list(variables if trainable is None else trainable)
    obj.regularization_losses = []
    for name, value in (assets or {}).items():
        setattr(obj, name, value)
    for name, value in (extra or {}).items():
        setattr(obj, name, value)
    obj.__call__ = tf.function(encode, input_signature=[tf.TensorSpec([None], tf.string)])

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
