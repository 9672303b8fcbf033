"""GPU-first device setup; the same code runs on CPU.

On GPUs: memory growth (TensorFlow otherwise grabs all memory at start), mixed precision for the
dense head (a SavedModel module keeps the dtype it was saved with), XLA for heads on cached
embeddings (string ops in a module cannot be compiled), and MirroredStrategy across several
GPUs (a Kaggle kernel has two T4s).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Devices:
    gpus: int
    strategy: object          # tf.distribute.Strategy
    mixed_precision: bool
    xla: bool

    def describe(self) -> str:
        if not self.gpus:
            return "CPU"
        return f"{self.gpus} GPU(s), {type(self.strategy).__name__}, mixed precision {'on' if self.mixed_precision else 'off'}"


@lru_cache(maxsize=1)
def devices() -> Devices:
    import tensorflow as tf
    import tf_keras as keras
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    return Devices(gpus=len(gpus), strategy=strategy, mixed_precision=bool(gpus), xla=bool(gpus))
