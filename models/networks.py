"""What a network looks like: the dense head, the heads over cached embeddings and cached token states, a module
inside the model (strings in), and a module's top layers over cached states or token ids.

Frozen modules train a head on cached embeddings (float inputs), or on cached per-token outputs through a pooling
layer (token_head = "pooling") or bidirectional GRU / LSTM layers and max + mean pooling (token_head = "gru" |
"lstm"). Fine-tuned modules learn at their own (lower) rate through models.training.TwoSpeedModel: the whole
module inside the step (`module_model`), or its top layers on states computed once below them, or all its layers
on token ids tokenized once (`top_model`). How data reaches them is models/batches.py; how they learn,
models/training.py.
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from core.errors import PipelineError
from models.handles import for_training
from models.modules.savedmodel import has_id_functions
from models.precision import call_arguments, module_dtype
from models.training import LazyAdam, TwoSpeedModel, epoch_metrics, warmup_then_linear

tf.get_logger().setLevel("ERROR")   # retracing notices for each fold's new model are expected, not news


def head(x, options):
    for width in options.head:
        x = keras.layers.Dense(width, activation="relu")(x)
        x = keras.layers.Dropout(options.dropout)(x)
    return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)


def cached_model(options, dim: int, jit: bool) -> keras.Model:
    """Head only: trains on cached embeddings of a frozen module."""
    inputs = keras.Input(shape=(dim,), dtype=tf.float32, name="embedding")
    model = keras.Model(inputs, head(inputs, options))
    # Many small steps: running 32 of them per call removes most of Keras' per-step overhead.
    model.compile(optimizer=keras.optimizers.Adam(options.lr, clipnorm=options.clipnorm), loss="binary_crossentropy",
                  metrics=epoch_metrics(), jit_compile=jit, steps_per_execution=32)
    return model


def masked_mean_max(x, lengths):
    """(mask [B, T, 1], far: large on padding, mean [B, D], max [B, D]) over each text's real tokens."""
    mask = tf.sequence_mask(lengths, tf.shape(x)[1], x.dtype)[:, :, None]
    count = tf.reduce_sum(mask, axis=1)
    far = tf.cast(1e4, x.dtype) * (1 - mask)              # keeps padding out of max and softmax
    mean = tf.reduce_sum(x * mask, axis=1) / tf.maximum(count, 1)
    top = tf.reduce_max(x * mask - far, axis=1) * tf.minimum(count, 1)   # 0 for a text without tokens
    return mask, far, mean, top


class TokenPooling(keras.layers.Layer):
    """Mean, max and learned-attention pooling over each text's real tokens: [B, T, D] -> [B, 3D].

    The module's own pooling (a mean, or a bag of words) weighs every token alike; the head's
    attention learns which tokens matter for the target, and max keeps a single strong one.
    """

    def __init__(self, attention_units: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(attention_units, activation="tanh")
        self.score = keras.layers.Dense(1)

    def call(self, inputs):
        x, lengths = inputs
        mask, far, mean, top = masked_mean_max(x, lengths)
        weights = tf.nn.softmax(self.score(self.hidden(x)) - far, axis=1)
        return tf.concat([mean, top, tf.reduce_sum(weights * x * mask, axis=1)], axis=-1)


class MaxMeanPooling(keras.layers.Layer):
    """Mean and max over each text's real tokens: [B, T, D] -> [B, 2D] (0 for a text without tokens)."""

    def call(self, inputs):
        _, _, mean, top = masked_mean_max(*inputs)
        return tf.concat([mean, top], axis=-1)


def _token_inputs(options, dim: int):
    """The token heads' inputs (cached states [B, T, D] in float16, lengths [B]) and the states after token dropout."""
    states = keras.Input(shape=(None, dim), dtype=tf.float16, name="token_embeddings")
    lengths = keras.Input(shape=(), dtype=tf.int32, name="lengths")
    x = keras.layers.Dropout(options.dropout)(tf.cast(states, keras.mixed_precision.global_policy().compute_dtype))
    return states, lengths, x


def _token_head(options, states, lengths, pooled) -> keras.Model:
    model = keras.Model([states, lengths], head(pooled, options))
    model.compile(optimizer=keras.optimizers.Adam(options.lr, clipnorm=options.clipnorm), loss="binary_crossentropy",
                  metrics=epoch_metrics())
    return model


def token_model(options, dim: int) -> keras.Model:
    """Head over a frozen module's cached per-token outputs: token dropout, TokenPooling, the dense head."""
    states, lengths, x = _token_inputs(options, dim)
    return _token_head(options, states, lengths, TokenPooling()([x, lengths]))


def recurrent_token_model(options, dim: int) -> keras.Model:
    """token_head = "gru" | "lstm": token dropout, rnn_layers bidirectional GRU / LSTM layers of rnn_units each way
    over each text's real tokens (masked by its length), max and mean pooling over them, the dense head.

    The Quora winners' network over word vectors. Padding never enters a recurrent state (the mask holds it
    back, in both directions) nor the pooling; the cuDNN kernel serves it on a GPU (right-padded batches).
    """
    states, lengths, x = _token_inputs(options, dim)
    mask = tf.sequence_mask(lengths, tf.shape(x)[1])
    cell = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[options.token_head]
    for _ in range(options.rnn_layers):
        x = keras.layers.Bidirectional(cell(options.rnn_units, return_sequences=True))(x, mask=mask)
    return _token_head(options, states, lengths, MaxMeanPooling()([x, lengths]))


def module_model(options, module_layers: list, steps_per_epoch: int = 1, trainable: bool = True) -> keras.Model:
    """Strings in: the hub layers run in every step (fine-tuning, or the tutorial-style frozen path).

    A fine-tuned module's learning rate decays linearly to zero over the planned steps, as BERT-style
    fine-tuning does: large early moves, then settling, without a learning rate to tune per epoch count.
    """
    inputs = keras.Input(shape=(), dtype=tf.string, name="text")
    dtype = keras.mixed_precision.global_policy().compute_dtype
    embeddings = [tf.cast(layer(inputs), dtype) for layer in module_layers]
    embedding = embeddings[0] if len(embeddings) == 1 else tf.concat(embeddings, axis=-1)
    if trainable:
        module_lr = keras.optimizers.schedules.PolynomialDecay(options.module_lr, options.epochs * steps_per_epoch, 0.0)
        model = TwoSpeedModel(inputs, head(embedding, options))
        model.compile(optimizer=keras.optimizers.Adam(options.lr), loss="binary_crossentropy", metrics=epoch_metrics(),
                      modules=module_layers, module_optimizer=keras.optimizers.Adam(module_lr),
                      clipnorm=options.clipnorm)
    else:
        model = keras.Model(inputs, head(embedding, options))
        model.compile(optimizer=keras.optimizers.Adam(options.lr, clipnorm=options.clipnorm),
                      loss="binary_crossentropy", metrics=epoch_metrics())
    return model


# ---- a module's top layers, trained on what is cached below them ----

def top_model(options, module_path: str, n_top: int | None, steps_per_epoch: int, values,
              compute_dtype: str = "float32", from_ids: bool = False):
    """The module's top n_top layers (None: all) and pooling -> the dense head; a TwoSpeedModel (module_lr for the
    module's weights, lr for the head, clipped together; both warm up, then decay linearly to 0). Inputs: cached
    states [B, T, W] (float16), or token ids [B, T] (from_ids: the embeddings layer trains too), and the lengths [B]."""
    if from_ids:
        inputs = keras.Input(shape=(None,), dtype=tf.int32, name="token_ids")
        x = inputs
    else:
        inputs = keras.Input(shape=(None, values.shape[1]), dtype=tf.float16, name="bottom_states")
        x = tf.cast(inputs, tf.float32)
    lengths = keras.Input(shape=(), dtype=tf.int32, name="lengths")
    # float32 variables and outputs; the module's products in compute_dtype
    top = ModuleTop(module_path, n_top, compute_dtype, from_ids, name="module_top", dtype="float32")
    embedding = top([x, lengths])
    dtype = keras.mixed_precision.global_policy().compute_dtype
    model = TwoSpeedModel([inputs, lengths], head(tf.cast(embedding, dtype), options))
    total = options.epochs * steps_per_epoch
    model.compile(optimizer=keras.optimizers.Adam(warmup_then_linear(options.lr, total)), loss="binary_crossentropy",
                  metrics=epoch_metrics(), modules=[top],
                  module_optimizer=LazyAdam(warmup_then_linear(options.module_lr, total)),
                  clipnorm=options.clipnorm)
    return model


class ModuleTop(keras.layers.Layer):
    """The module's top n layers and its pooling: (states [B, T, W] or, from_ids, token ids [B, T]; lengths
    [B]) -> [B, D].

    Each instance starts from the module's pretrained weights (loaded once per process, reset for each
    fold); only the top n layers' variables (and from ids, the embeddings layer's) are its weights (trained,
    and saved with the model); the rest of the module stays out of the model. From ids the token table's
    rows are gathered here, so its gradient is sparse (LazyAdam updates only the rows a batch used).
    """

    def __init__(self, module_path: str, n_top: int | None, compute_dtype: str = "float32",
                 from_ids: bool = False, **kwargs):
        super().__init__(**kwargs)
        module = for_training(module_path)
        n_top = n_top or len(module.layer_variables)
        if from_ids and not has_id_functions(module):
            raise PipelineError(f"module {module_path} takes no token ids (embed_tokens); rebuild it with "
                                f"rm -rf {module_path} && make modules")
        object.__setattr__(self, "_module", module)     # untracked: its other variables are not the model's
        self.n_top, self.from_ids = n_top, from_ids
        self.compute_dtype_name = compute_dtype
        self.arguments = call_arguments(module_dtype(module, compute_dtype))
        self.top_weights = [v for layer in module.layer_variables[-n_top:] for v in layer]
        if from_ids:
            self.top_weights += list(module.embedding_variables)

    def call(self, inputs, training=None):
        x, lengths = inputs
        if self.from_ids:
            x = self._module.embed_tokens(tf.gather(self._module.word_embeddings, x), x, lengths)
        top = tf.__internal__.smart_cond.smart_cond(
            bool(training) if training is None else training,
            lambda: self._module.top_layers(x, lengths, self.n_top, training=True, **self.arguments),
            lambda: self._module.top_layers(x, lengths, self.n_top, training=False, **self.arguments))
        return self._module.pool_states(top, lengths)

    def get_config(self):
        return {**super().get_config(), "n_top": self.n_top, "from_ids": self.from_ids,
                "compute_dtype": self.compute_dtype_name}
