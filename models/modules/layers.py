"""Network pieces more than one module family computes."""
from __future__ import annotations

import core  # noqa: F401  (environment for TensorFlow)
import tensorflow as tf


def layer_norm(x: tf.Tensor, gamma: tf.Variable, beta: tf.Variable, eps: float) -> tf.Tensor:
    """Layer normalisation over the last axis: (x - mean) / sqrt(variance + eps) * gamma + beta."""
    x = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    var = tf.reduce_mean(tf.square(x), axis=-1, keepdims=True)
    return x * tf.math.rsqrt(var + eps) * gamma + beta


def matmul(x: tf.Tensor, w: tf.Variable, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """x @ w computed in `dtype` (x and the float32 weights cast to it), the product returned in float32: at
    float32 exactly x @ w."""
    return tf.cast(tf.matmul(tf.cast(x, dtype), tf.cast(w, dtype)), tf.float32)
