"""The hub model: a text-embedding module (or its cached output) -> dense head -> one sigmoid.

Frozen modules train the head on cached embeddings (float inputs), or with features = "tokens"
on cached per-token outputs through a pooling layer (token_head = "pooling") or bidirectional
GRU / LSTM layers and max + mean pooling (token_head = "gru" | "lstm"). Fine-tuned modules run the
module inside the training step, with their own (lower) learning rate and global-norm gradient
clipping, through `TwoSpeedModel`.
"""
from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tqdm.auto import tqdm

from core.config import ModelSpec

tf.get_logger().setLevel("ERROR")   # retracing notices for each fold's new model are expected, not news


def head(x, spec: ModelSpec):
    for width in spec.head:
        x = keras.layers.Dense(width, activation="relu")(x)
        x = keras.layers.Dropout(spec.dropout)(x)
    return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)


def cached_model(spec: ModelSpec, dim: int, jit: bool) -> keras.Model:
    """Head only: trains on cached embeddings of a frozen module."""
    inputs = keras.Input(shape=(dim,), dtype=tf.float32, name="embedding")
    model = keras.Model(inputs, head(inputs, spec))
    # Many small steps: running 32 of them per call removes most of Keras' per-step overhead.
    model.compile(optimizer=keras.optimizers.Adam(spec.lr, clipnorm=spec.clipnorm), loss="binary_crossentropy",
                  metrics=["accuracy"], jit_compile=jit, steps_per_execution=32)
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


def _token_inputs(spec: ModelSpec, dim: int):
    """The token heads' inputs (cached states [B, T, D] in float16, lengths [B]) and the states after token dropout."""
    states = keras.Input(shape=(None, dim), dtype=tf.float16, name="token_embeddings")
    lengths = keras.Input(shape=(), dtype=tf.int32, name="lengths")
    x = keras.layers.Dropout(spec.dropout)(tf.cast(states, keras.mixed_precision.global_policy().compute_dtype))
    return states, lengths, x


def _token_head(spec: ModelSpec, states, lengths, pooled) -> keras.Model:
    model = keras.Model([states, lengths], head(pooled, spec))
    model.compile(optimizer=keras.optimizers.Adam(spec.lr, clipnorm=spec.clipnorm), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def token_model(spec: ModelSpec, dim: int) -> keras.Model:
    """Head over a frozen module's cached per-token outputs: token dropout, TokenPooling, the dense head."""
    states, lengths, x = _token_inputs(spec, dim)
    return _token_head(spec, states, lengths, TokenPooling()([x, lengths]))


def recurrent_token_model(spec: ModelSpec, dim: int) -> keras.Model:
    """token_head = "gru" | "lstm": token dropout, rnn_layers bidirectional GRU / LSTM layers of rnn_units each way
    over each text's real tokens (masked by its length), max and mean pooling over them, the dense head.

    The Quora winners' network over word vectors. Padding never enters a recurrent state (the mask holds it
    back, in both directions) nor the pooling; the cuDNN kernel serves it on a GPU (right-padded batches).
    """
    states, lengths, x = _token_inputs(spec, dim)
    mask = tf.sequence_mask(lengths, tf.shape(x)[1])
    cell = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[spec.token_head]
    for _ in range(spec.rnn_layers):
        x = keras.layers.Bidirectional(cell(spec.rnn_units, return_sequences=True))(x, mask=mask)
    return _token_head(spec, states, lengths, MaxMeanPooling()([x, lengths]))


def streamed(make_inputs, inputs_signature, rows: np.ndarray, y, batch_size: int,
             seed: int | None = None, sized: bool = True) -> tf.data.Dataset:
    """Batches (make_inputs(batch rows), y) built batch by batch from memory-mapped caches: only the batch in
    hand is read, so a cache may be larger than memory. With a seed, the rows are shuffled anew every
    epoch; without, they keep their order (evaluation, prediction)."""
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


def embedding_dataset(parts: list[np.ndarray], rows: np.ndarray, y, batch_size: int,
                      seed: int | None = None) -> tf.data.Dataset:
    """Batches of cached sentence embeddings [B, sum of dims]: each module's cache read for the batch's rows
    and laid side by side, never the whole matrix in memory."""
    dim = sum(p.shape[1] for p in parts)
    return streamed(lambda chosen: np.concatenate([p[chosen] for p in parts], axis=1).astype(np.float32, copy=False),
                    tf.TensorSpec([None, dim], tf.float32), rows, y, batch_size, seed)


def token_dataset(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray, y, batch_size: int,
                  seed: int | None = None) -> tf.data.Dataset:
    """Batches ((states [B, T, D] padded to the batch's longest, lengths [B]), y) read from a token cache; from
    a token-id cache (values [tokens] int32) the batches' first part is the ids [B, T], padded with 0."""
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


def module_model(spec: ModelSpec, module_layers: list, steps_per_epoch: int = 1) -> keras.Model:
    """Strings in: the hub layers run in every step (fine-tuning, or the tutorial-style frozen path).

    A fine-tuned module's learning rate decays linearly to zero over the planned steps, as BERT-style
    fine-tuning does: large early moves, then settling, without a learning rate to tune per epoch count.
    """
    inputs = keras.Input(shape=(), dtype=tf.string, name="text")
    dtype = keras.mixed_precision.global_policy().compute_dtype
    embeddings = [tf.cast(layer(inputs), dtype) for layer in module_layers]
    embedding = embeddings[0] if len(embeddings) == 1 else tf.concat(embeddings, axis=-1)
    if spec.trainable:
        module_lr = keras.optimizers.schedules.PolynomialDecay(spec.module_lr, spec.epochs * steps_per_epoch, 0.0)
        model = TwoSpeedModel(inputs, head(embedding, spec))
        model.compile(optimizer=keras.optimizers.Adam(spec.lr), loss="binary_crossentropy", metrics=["accuracy"],
                      modules=module_layers, module_optimizer=keras.optimizers.Adam(module_lr), clipnorm=spec.clipnorm)
    else:
        model = keras.Model(inputs, head(embedding, spec))
        model.compile(optimizer=keras.optimizers.Adam(spec.lr, clipnorm=spec.clipnorm),
                      loss="binary_crossentropy", metrics=["accuracy"])
    return model


class TwoSpeedModel(keras.Model):
    """A model whose module weights learn at module_lr and head weights at lr, gradients clipped together.

    Under mixed_float16 the loss is scaled before the gradients (float16 gradients of a small loss underflow
    to zero) and both optimizers get unscaled gradients; a step whose gradients are not finite is skipped by
    both (their LossScaleOptimizer wrappers) and the loss scale lowered. Under several replicas the
    gradients are summed first, so the clipping sees the whole batch's gradient norm, not each replica's.
    """

    def compile(self, *args, modules=(), module_optimizer=None, clipnorm=1.0, **kwargs):
        super().compile(*args, **kwargs)          # wraps the head optimizer in a LossScaleOptimizer under float16
        if isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer):
            module_optimizer = keras.mixed_precision.LossScaleOptimizer(module_optimizer)
        self.module_layers, self.module_optimizer, self.clipnorm = list(modules), module_optimizer, clipnorm

    def train_step(self, data):
        x, y = data
        module_vars = [v for module in self.module_layers for v in module.trainable_variables]
        module_ids = {id(v) for v in module_vars}
        head_vars = [v for v in self.trainable_variables if id(v) not in module_ids]
        scaled = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            prediction = self(x, training=True)
            loss = self.compiled_loss(y, prediction, regularization_losses=self.losses)
            scaled_loss = self.optimizer.get_scaled_loss(loss) if scaled else loss
        grads = tape.gradient(scaled_loss, module_vars + head_vars)
        if scaled:
            grads = self.optimizer.get_unscaled_gradients(grads)
        grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        grads, _ = tf.clip_by_global_norm(grads, self.clipnorm)
        self.module_optimizer.apply_gradients(zip(grads[:len(module_vars)], module_vars),
                                              skip_gradients_aggregation=True)
        self.optimizer.apply_gradients(zip(grads[len(module_vars):], head_vars), skip_gradients_aggregation=True)
        self.compiled_metrics.update_state(y, prediction)
        return {m.name: m.result() for m in self.metrics}


def bucketed_dataset(x, y, lengths: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Batches of texts of similar length, in a new random order every epoch.

    A module that pads to the batch's longest text (a transformer) then wastes almost no work on
    padding: questions run from a few tokens to over a hundred. Equal lengths are shuffled.
    """
    order = np.lexsort((np.random.default_rng(seed).random(len(lengths)), lengths))
    batches = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(batch_size)
    return batches.shuffle(len(order) // batch_size + 1, seed=seed, reshuffle_each_iteration=True) \
        .prefetch(tf.data.AUTOTUNE)


def dataset(x, y, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    data = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x)
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class ProgressBar(keras.callbacks.Callback):
    """One tqdm bar per fold over all its batches, with the latest losses."""

    def __init__(self, label: str, epochs: int, steps: int):
        super().__init__()
        self.label, self.total, self.bar, self.done_in_epoch = label, epochs * steps, None, 0

    def on_train_begin(self, logs=None):
        self.bar = tqdm(total=self.total, desc=self.label, unit="batch", mininterval=1, leave=False)

    def on_epoch_begin(self, epoch, logs=None):
        self.done_in_epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last step run: with steps_per_execution the hook sees several at once.
        self.bar.update(batch + 1 - self.done_in_epoch)
        self.done_in_epoch = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in (logs or {}).items() if "loss" in k})

    def on_train_end(self, logs=None):
        self.bar.close()


def fit(model: keras.Model, train_data, val_data, spec: ModelSpec, steps: int, label: str, log_dir) -> dict:
    """Fit with early stopping on validation loss (best weights restored); returns the history."""
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=str(log_dir), update_freq="epoch", profile_batch=0),
    ]
    if sys.stderr.isatty():                 # a bar on a terminal; logs and CI get the one-line fold summary
        callbacks.append(ProgressBar(label, spec.epochs, steps))
    history = model.fit(train_data, validation_data=val_data, epochs=spec.epochs, callbacks=callbacks, verbose=0)
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def predict(model: keras.Model, x, batch_size: int, lengths: np.ndarray | None = None) -> np.ndarray:
    """Probabilities in the order of x; with lengths, computed in length order (least padding)."""
    order = np.argsort(lengths, kind="stable") if lengths is not None else np.arange(len(x))
    out = np.empty(len(x), np.float32)
    out[order] = model.predict(dataset(x[order], None, batch_size, False, 0), verbose=0).reshape(-1)
    return out
