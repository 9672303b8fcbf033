"""Checks every hub-module family's tests make: the module protocol, and fine-tuning through hub.KerasLayer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow, which is imported where used)

# Texts that break tokenizers: accents, ligatures, CJK, control and zero-width characters, the word-length limit
TRICKY = [
    "Café naïve résumé: ÀÉÎÕÜ", "Ellipsis… and ﬁ ligature, n² and ＦＵＬＬ width", "中文字符 mixed with English",
    "zero\u200bwidth, soft\u00adhyphen and a\x00nul\ufffd", "tab\tnew\nline\rreturn",
    "x" * 101, "é" * 60, "ж" * 60, "ж" * 101, "鳥" * 30 + "ж" * 100,  # the 100-character word limit
    "emoji 😀👍 and symbols © ® ™ € £ ¥", "İstanbul ΣΟΦΟΣ Straße", "", "   ", "[CLS] literal [SEP]x[MASK]",
    "nbsp\xa0and ideographic\u3000space", "‘quotes’ «guillemets» — dashes – -", "Don't won't I'm",
    "Ⅻ ½ ℃ ㎏ and ǅ", "\u0301leading accent", "URL https://example.com/a?b=c&d=e#f", "1,000,000.50 $5 5%",
] + [" ".join(["repeated words to pass the length limit"] * 40)]


def assert_token_functions_agree(module, texts: list[str]):
    """token_embeddings gives a float32 vector for each token `tokenize` gives; returns the token embeddings."""
    import tensorflow as tf
    batch = tf.constant(texts)
    ids, tokens = module.tokenize(batch), module.token_embeddings(batch)
    assert ids.dtype.is_integer and tokens.dtype == tf.float32 and tokens.shape.rank == 3
    assert tokens.row_lengths().numpy().tolist() == ids.row_lengths().numpy().tolist()
    return tokens


@dataclass
class Fit:
    layer: object                 # the hub.KerasLayer
    before: list[np.ndarray]      # the module weights compared, before the fit
    after: list[np.ndarray]

    @property
    def changed(self) -> int:
        """How many of the compared weights the fit changed."""
        return sum(not np.array_equal(b, a) for b, a in zip(self.before, self.after))


def fit_once(path: Path, trainable: bool, texts: list[str], labels: list[float], learning_rate: float = 0.1,
             compare=lambda weight: True) -> Fit:
    """One SGD step (no optimizer slots: quick) of a classifier on the module at `path` through hub.KerasLayer.

    `compare`: which of the layer's weights to copy and compare (a huge table may be left out).
    """
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    layer = hub.KerasLayer(str(path), input_shape=[], dtype=tf.string, trainable=trainable)
    model = tf_keras.Sequential([layer, tf_keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate), loss="binary_crossentropy")
    weights = [w for w in layer.weights if compare(w)]
    before = [w.numpy().copy() for w in weights]
    model.fit(tf.constant(texts), tf.constant(labels), batch_size=len(texts), epochs=1, verbose=0)
    return Fit(layer, before, [w.numpy() for w in weights])
