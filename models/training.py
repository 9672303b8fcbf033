"""How a network learns: the step with two learning rates (module and head, gradients clipped together, loss
scaling under float16), the module's optimizer (LazyAdam) and learning-rate schedule, and the fit with early
stopping, TensorBoard logs and a progress bar."""
from __future__ import annotations

import sys

import tensorflow as tf
import tf_keras as keras
from tqdm.auto import tqdm

WARMUP = 0.06           # of all planned steps: the learning rates' linear warm-up, then linear decay to 0


class BestF1(keras.metrics.Metric):
    """F1 at the best threshold of the epoch's scores, found over BINS score bins (the competition's metric, as
    each model's OOF F1 is chosen, to a bin's width): streamed, so it costs no pass of its own and sums across
    replicas. Accuracy, which a 6%-positive target reaches at 0.94 by predicting nothing, is not shown."""
    BINS = 1000

    def __init__(self, name="f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.positives = self.add_weight(name="positives", shape=(self.BINS,), initializer="zeros")
        self.negatives = self.add_weight(name="negatives", shape=(self.BINS,), initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y = tf.reshape(tf.cast(y_true, tf.float32), [-1])
        bins = tf.clip_by_value(tf.cast(tf.reshape(tf.cast(y_pred, tf.float32), [-1]) * self.BINS, tf.int32), 0,
                                self.BINS - 1)
        self.positives.assign_add(tf.math.unsorted_segment_sum(y, bins, self.BINS))
        self.negatives.assign_add(tf.math.unsorted_segment_sum(1 - y, bins, self.BINS))

    def result(self):
        # predicting positive from bin b up: true positives and every positive, cumulated from the top bin down
        tp = tf.cumsum(self.positives, reverse=True)
        predicted = tp + tf.cumsum(self.negatives, reverse=True)
        return tf.reduce_max(2 * tp / tf.maximum(predicted + tf.reduce_sum(self.positives), 1.0))

    def reset_state(self):
        for v in (self.positives, self.negatives):
            v.assign(tf.zeros_like(v))


def epoch_metrics() -> list:
    """What fit reports (and TensorBoard shows) each epoch, for train and validation, beside the loss: AUC and
    F1 at the epoch's best threshold."""
    return [keras.metrics.AUC(name="auc"), BestF1()]


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


class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse gradients (a token table's rows) update only the rows they touch, moments included,
    as LazyAdam does: a step costs what the batch's tokens cost, not the 30k-row table. Dense gradients get
    Adam's math in one fused kernel (ResourceApplyAdam: one pass over the variable and its moments, where
    Keras's update_step makes five; with an encoder's 22M weights that was a tenth of a fine-tuning step)."""

    def update_step(self, gradient, variable):
        step = tf.cast(self.iterations + 1, variable.dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, variable.dtype), tf.cast(self.beta_2, variable.dtype)
        lr = tf.cast(self.learning_rate, variable.dtype)
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        if not isinstance(gradient, tf.IndexedSlices):
            return tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=lr, beta1=beta_1, beta2=beta_2,
                epsilon=tf.cast(self.epsilon, variable.dtype), grad=gradient)
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))


class WarmupLinear(keras.optimizers.schedules.LearningRateSchedule):
    """peak x min(steps / warm, (total - step + 1) / (total - warm + 1)), within [0, 1] of the peak."""

    def __init__(self, peak, total, warm):
        self.peak, self.total, self.warm = peak, float(max(total, 1)), float(max(warm, 1))

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0           # the first step already moves
        rising = step / self.warm
        falling = (self.total - step + 1.0) / max(self.total - self.warm + 1.0, 1.0)
        return self.peak * tf.clip_by_value(tf.minimum(rising, falling), 0.0, 1.0)

    def get_config(self):
        return {"peak": self.peak, "total": self.total, "warm": self.warm}


def warmup_then_linear(peak: float, total_steps: int, warmup: float = WARMUP):
    """A learning rate rising linearly to `peak` over the first `warmup` of the steps, then falling to 0."""
    return WarmupLinear(peak, total_steps, round(warmup * total_steps))


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


def fit(model: keras.Model, train_data, val_data, options, steps: int, label: str, log_dir) -> dict:
    """Fit with early stopping on validation loss (best weights restored); returns the history."""
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=str(log_dir), update_freq="epoch", profile_batch=0),
    ]
    if sys.stderr.isatty():                 # a bar on a terminal; logs and CI get the one-line fold summary
        callbacks.append(ProgressBar(label, options.epochs, steps))
    history = model.fit(train_data, validation_data=val_data, epochs=options.epochs, callbacks=callbacks, verbose=0)
    return {k: [float(v) for v in values] for k, values in history.history.items()}
