"""Fine-tuning a module on inputs computed once per text: its top n layers on cached states of the layers below
them (partial), or the whole module on cached token ids (full).

With `trainable_layers = n` (and trainable = true) in a model table, the module's bottom L - n layers
are frozen, so each text's per-token states below the top n layers are the same in every epoch and
fold: they are computed once (the module's `bottom_states`, cached in half precision and memory-mapped
like the token cache, models.embed_cache) and every fold trains only a fresh copy of the top n layers
(the module's `top_layers`, initialised from its pretrained weights, with its dropout), its pooling
and the dense head, on batches of similar-length texts read from the cache. n = L (all the layers)
is full fine-tuning in effect, except that the embeddings layer stays frozen.

With trainable = true and no trainable_layers, a module that takes token ids (savedmodel's ID_FUNCTIONS)
trains whole, embeddings included (FullTrainer): each text is tokenized once and its ids cached, and each
fold's batches of ids feed the module's embeddings layer, all its layers and its pooling; the token table's
rows are gathered here, so its gradient is sparse and lazy_adam updates only the rows a batch used.

The module layers learn at module_lr and the head at lr (keras_model.TwoSpeedModel, gradients clipped
together); both rates warm up over the first WARMUP of the steps, then decay linearly to zero. Both paths
compute in the devices' precision (models.devices: the module's compute_dtype, float32 variables).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.errors import PipelineError
from models.trainer_base import NetworkTrainer, embed_once

WARMUP = 0.06           # of all planned steps: the learning rates' linear warm-up, then linear decay to 0
SHUFFLE_BATCHES = 64    # batches shuffled anew each epoch, beyond the fold's fixed random batch order
EVAL_BATCH = 4          # evaluation and prediction batches, in training batches: no gradients to keep


@lru_cache(maxsize=4)
def load_module(path: str):
    """The module at `path`, loaded once per process (some ten seconds a load) inside the devices' strategy
    scope (its variables mirrored where there are replicas), with its variables' pretrained values kept aside:
    `pretrained(path)` puts them back before a fold trains its own copy of them."""
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (the module's tokenizer ops)
    from models.devices import devices
    with devices().strategy.scope():
        module = hub.load(path)
    PRETRAINED[path] = [v.numpy() for v in module.variables]
    return module


PRETRAINED: dict[str, list[np.ndarray]] = {}     # module path -> its variables' values as loaded


def pretrained(path: str):
    """The loaded module with every variable back at its pretrained value (a fold before trained some)."""
    module = load_module(path)
    for variable, value in zip(module.variables, PRETRAINED[path]):
        variable.assign(value)
    return module


def layer_count(spec, cfg, module_path: str) -> int:
    """The module's layer count, once trainable_layers is checked against it; PipelineError naming the table."""
    from models.modules.savedmodel import LAYER_FUNCTIONS, has_layer_functions
    where = f"{cfg.path}: [models.{spec.name}] trainable_layers = {spec.trainable_layers}"
    module = load_module(module_path)
    if not has_layer_functions(module):
        raise PipelineError(f"{where} needs a module that exposes its layers ({', '.join(LAYER_FUNCTIONS)}); "
                            f"{module_path} has none (minilm has them when built by `make modules` since partial "
                            f"fine-tuning was added): rebuild it with rm -rf {module_path} && make modules, or "
                            f"drop trainable_layers to fine-tune the whole module")
    layers = len(module.layer_variables)
    if (spec.trainable_layers or 0) > layers:
        raise PipelineError(f"{where}: the module {module_path} has {layers} layers; use 1..{layers}")
    return layers


def bottom_states(module_path: str, texts: np.ndarray, label: str, n_top: int, precision: str = "float16",
                  budget_gb: float | None = None, compute_dtype: str = "float32"):
    """(values, offsets) of the states below the module's top n_top layers, cached once (models.embed_cache)."""
    from models.embed_cache import cached_token_embeddings
    return cached_token_embeddings(module_path, texts, label, "bottom_states", precision=precision,
                                   budget_gb=budget_gb, compute_dtype=compute_dtype, n_top=n_top)


class CachedInputsTrainer(NetworkTrainer):
    """A module's top layers + pooling + head fine-tuned per fold on inputs computed once per text and cached:
    the states below the top layers (PartialTrainer) or the token ids (FullTrainer)."""
    from_ids = False

    def n_top(self) -> int | None:
        """The top layers that train (None: all of them)."""
        raise NotImplementedError

    def inputs(self, module: str, texts: np.ndarray, label: str):
        """(values, offsets) of the cached inputs of `texts`: text i's are values[offsets[i]:offsets[i + 1]]."""
        raise NotImplementedError

    def prepare(self):
        [module] = self.module_paths()
        layers = layer_count(self.spec, self.cfg, module)
        seconds = embed_once(self.inputs, [module], self.train, self.test)
        return {"embed_seconds": seconds, "module_layers": layers, "trainable_layers": self.n_top() or layers}

    def network(self, spec, fold, dev, batch, y):
        from models.keras_model import token_dataset
        [module] = self.module_paths()
        (values, offsets), (test_values, test_offsets) = (self.inputs(module, t, name) for t, name in
                                                          ((self.train.texts, "train"), (self.test.texts, "test")))
        steps = -(-len(fold.fit_rows) // batch)
        with dev.strategy.scope():          # a fresh copy of the top layers for every fold (and seed)
            model = top_model(spec, module, self.n_top(), steps, values, dev.compute_dtype, self.from_ids)
        lengths = np.diff(offsets)
        train_data = token_dataset(values, offsets, bucketed_rows(fold.fit_rows, lengths, batch, spec.seed + fold.k),
                                   y, batch).shuffle(SHUFFLE_BATCHES, seed=spec.seed + fold.k)
        held = by_length(fold.held_rows, lengths)
        history = self.fit(model, train_data, token_dataset(values, offsets, held, y, EVAL_BATCH * batch),
                           spec, fold, steps)
        return (predict(model, values, offsets, fold.held_rows, EVAL_BATCH * batch),
                predict(model, test_values, test_offsets, np.arange(len(test_offsets) - 1), EVAL_BATCH * batch),
                history)


class PartialTrainer(CachedInputsTrainer):
    """trainable_layers = n: the top n module layers + pooling + head train per fold on cached lower states."""
    path, description = "partial", "top module layers fine-tuned on cached states of the layers below"

    @staticmethod
    def takes(spec):
        return spec.kind == "hub" and spec.trainable and spec.trainable_layers is not None

    def n_top(self):
        return self.spec.trainable_layers

    def inputs(self, module: str, texts: np.ndarray, label: str):
        """The cached states below the model's trainable layers (in the model's token_precision)."""
        from models.devices import devices
        return bottom_states(module, texts, label, self.spec.trainable_layers, self.spec.token_precision,
                             self.cfg.workspace.disk_budget_gb, devices().compute_dtype)


class FullTrainer(CachedInputsTrainer):
    """trainable = true on a module that takes token ids: every layer and the embeddings train, on token ids
    tokenized once per text (not in every step), in batches of similar length."""
    path, description, from_ids = "full", "whole module fine-tuned on token ids tokenized once", True

    @staticmethod
    def takes(spec):
        from models.handles import local_module
        from models.modules.savedmodel import takes_token_ids
        if not (spec.kind == "hub" and spec.trainable and spec.trainable_layers is None and len(spec.handles) == 1):
            return False
        path = local_module(spec.handles[0])
        return path is not None and takes_token_ids(path)

    def n_top(self):
        return None

    def inputs(self, module: str, texts: np.ndarray, label: str):
        from models.embed_cache import cached_token_ids
        return cached_token_ids(module, texts, label)


def by_length(rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return rows[np.argsort(lengths[rows], kind="stable")]


def bucketed_rows(rows: np.ndarray, lengths: np.ndarray, batch: int, seed: int) -> np.ndarray:
    """`rows` in batches of similar length (ties broken at random), the full batches in random order, the
    short one last: read in order, batch by batch, each batch is padded to little beyond its own texts."""
    rng = np.random.default_rng(seed)
    ordered = rows[np.lexsort((rng.random(len(rows)), lengths[rows]))]
    full = len(ordered) // batch
    chunks = ordered[:full * batch].reshape(full, batch)[rng.permutation(full)]
    return np.concatenate([chunks.reshape(-1), ordered[full * batch:]])


def predict(model, values, offsets, rows: np.ndarray, batch: int) -> np.ndarray:
    """Probabilities for `rows`, in their order, computed in length order (least padding)."""
    from models.keras_model import token_dataset
    order = np.argsort(np.diff(offsets)[rows], kind="stable")
    out = np.empty(len(rows), np.float32)
    out[order] = model.predict(token_dataset(values, offsets, rows[order], None, batch), verbose=0).reshape(-1)
    return out


# ---- the network ----

def top_model(spec, module_path: str, n_top: int | None, steps_per_epoch: int, values,
              compute_dtype: str = "float32", from_ids: bool = False):
    """The module's top n_top layers (None: all) and pooling -> the dense head; a TwoSpeedModel (module_lr for the module's
    weights, lr for the head, clipped together). Inputs: cached states [B, T, W] (float16), or token ids [B, T]
    (from_ids: the embeddings layer trains too), and the lengths [B]."""
    import tensorflow as tf
    import tf_keras as keras
    from models.keras_model import TwoSpeedModel, head
    if from_ids:
        inputs = keras.Input(shape=(None,), dtype=tf.int32, name="token_ids")
        x = inputs
    else:
        inputs = keras.Input(shape=(None, values.shape[1]), dtype=tf.float16, name="bottom_states")
        x = tf.cast(inputs, tf.float32)
    lengths = keras.Input(shape=(), dtype=tf.int32, name="lengths")
    # float32 variables and outputs; the module's products in compute_dtype
    top = module_top_class()(module_path, n_top, compute_dtype, from_ids, name="module_top", dtype="float32")
    embedding = top([x, lengths])
    dtype = keras.mixed_precision.global_policy().compute_dtype
    model = TwoSpeedModel([inputs, lengths], head(tf.cast(embedding, dtype), spec))
    total = spec.epochs * steps_per_epoch
    model.compile(optimizer=keras.optimizers.Adam(warmup_then_linear(spec.lr, total)), loss="binary_crossentropy",
                  metrics=["accuracy"], modules=[top],
                  module_optimizer=lazy_adam()(warmup_then_linear(spec.module_lr, total)),
                  clipnorm=spec.clipnorm)
    return model


def warmup_then_linear(peak: float, total_steps: int, warmup: float = WARMUP):
    """A learning rate rising linearly to `peak` over the first `warmup` of the steps, then falling to 0."""
    import tf_keras as keras

    class WarmupLinear(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, peak, total, warm):
            self.peak, self.total, self.warm = peak, float(max(total, 1)), float(max(warm, 1))

        def __call__(self, step):
            import tensorflow as tf
            step = tf.cast(step, tf.float32) + 1.0           # the first step already moves
            rising = step / self.warm
            falling = (self.total - step + 1.0) / max(self.total - self.warm + 1.0, 1.0)
            return self.peak * tf.clip_by_value(tf.minimum(rising, falling), 0.0, 1.0)

        def get_config(self):
            return {"peak": self.peak, "total": self.total, "warm": self.warm}

    return WarmupLinear(peak, total_steps, round(warmup * total_steps))


@lru_cache(maxsize=1)
def module_top_class():
    """The Keras layer class ModuleTop (made on first use: importing this file imports no TensorFlow)."""
    import tensorflow as tf
    import tf_keras as keras
    from models.modules.savedmodel import has_id_functions
    from models.precision import call_arguments, module_dtype

    class ModuleTop(keras.layers.Layer):
        """The module's top n layers and its pooling: (states [B, T, W] or, from_ids, token ids [B, T]; lengths
        [B]) -> [B, D].

        Each instance starts from the module's pretrained weights (loaded once per process, reset for each
        fold); only the top n layers' variables (and from ids, the embeddings layer's) are its weights (trained,
        and saved with the model); the rest of the module stays out of the model. From ids the token table's
        rows are gathered here, so its gradient is sparse (lazy_adam updates only the rows a batch used).
        """

        def __init__(self, module_path: str, n_top: int | None, compute_dtype: str = "float32",
                     from_ids: bool = False, **kwargs):
            super().__init__(**kwargs)
            module = pretrained(module_path)
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

    return ModuleTop


@lru_cache(maxsize=1)
def lazy_adam():
    """Adam whose sparse gradients (a token table's rows) update only the rows they touch, moments included,
    as LazyAdam does: a step costs what the batch's tokens cost, not the 30k-row table. Dense gradients get
    Adam's math in one fused kernel (ResourceApplyAdam: one pass over the variable and its moments, where
    Keras's update_step makes five; with an encoder's 22M weights that was a tenth of a fine-tuning step)."""
    import tensorflow as tf
    import tf_keras as keras

    class LazyAdam(keras.optimizers.Adam):
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

    return LazyAdam
