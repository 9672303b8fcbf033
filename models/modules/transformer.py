"""One post-LN transformer encoder (BERT's) for every transformer module family, configured per family.

A family's file (minilm.py, mpnet.py) says where its weights come from, its tokenizer and its
`Architecture`: sizes, the original tensor names, and how positions enter:
- "absolute" (BERT, MiniLM): position embeddings 0..T-1 and token type 0 added to the word embeddings;
- "after_padding" (RoBERTa, MPNet): position ids that start after the padding index, and with
  relative_buckets > 0 (MPNet) a learned bias per head on each query-key distance bucket, one table
  shared by all the layers.
The encoder maps texts to the mean-pooled, L2-normalised sentence embedding (sentence-transformers'
Pooling + Normalize) and exposes its layers split at any depth for partial fine-tuning
(savedmodel.LayerSplit), and its embeddings layer on token ids for full fine-tuning on ids tokenized once.

Precision is chosen at call time: compute_dtype "float32" or "bfloat16". Under bfloat16 the matrix
products and attention run in bfloat16 (oneDNN's bf16 kernels on CPUs that have them) while the
variables, the residual stream, layer norms, softmax and pooling stay float32, and every output is float32.
At float32 every cast is a no-op: the graph computes exactly what it computed before precision existed.
Each batch is padded only to its own longest text; sort texts by length before batching.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import core  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from core.errors import PipelineError
from models.modules.layers import layer_norm
from models.modules.savedmodel import COMPUTE_DTYPES, LayerSplit, export_text_encoder

DENSE_ROLES = ("query", "key", "value", "attention_output", "intermediate", "output")
NORM_ROLES = ("attention_norm", "output_norm")


@dataclass(frozen=True)
class Architecture:
    """What differs between the transformer encoders built here."""
    layers: int
    width: int
    heads: int
    eps: float                              # layer norms' epsilon
    max_positions: int                      # rows of the position table
    names: dict[str, str]                   # role -> original tensor name ("{i}": the layer), .weight/.bias added
    positions: str = "absolute"             # "absolute" | "after_padding"
    pad_id: int = 0
    relative_buckets: int = 0               # > 0: MPNet's bucketed relative position bias
    relative_max_distance: int = 128
    hidden_dropout: float = 0.0             # applied only when training
    attention_dropout: float = 0.0
    skip: tuple[str, ...] = field(default=("pooler.", "embeddings.position_ids"))  # original tensors not used

    @classmethod
    def of_config(cls, config: dict, names: dict[str, str], **layout) -> Architecture:
        """The shape and dropouts an original's config.json gives; `layout`: the family's positions and bias."""
        return cls(layers=config["num_hidden_layers"], width=config["hidden_size"],
                   heads=config["num_attention_heads"], eps=config["layer_norm_eps"],
                   max_positions=config["max_position_embeddings"], names=names,
                   hidden_dropout=float(config.get("hidden_dropout_prob", 0.0)),
                   attention_dropout=float(config.get("attention_probs_dropout_prob", 0.0)), **layout)

    def problems(self) -> list[str]:
        if self.positions not in ("absolute", "after_padding"):
            return [f"positions {self.positions!r} is not 'absolute' or 'after_padding'"]
        return []


def gelu(x: tf.Tensor) -> tf.Tensor:
    """BERT's exact GELU (erf), not the tanh approximation."""
    return 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))


def dense(x: tf.Tensor, kernel: tf.Variable, bias: tf.Variable) -> tf.Tensor:
    """x [..., in] @ kernel [in, out] + bias as one 2-D matmul, in x's dtype (the float32 variables cast to it).

    A matmul of [B, T, in] by a 2-D kernel is a broadcasting batch matmul, whose kernel gradient builds a
    [B, in, out] tensor and sums it over B: several times slower fine-tuning on a CPU than the 2-D product's
    (bench history, 2026-12-02)."""
    shape = tf.shape(x)
    y = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), tf.cast(kernel, x.dtype)) + tf.cast(bias, x.dtype)
    return tf.reshape(y, tf.concat([shape[:-1], [kernel.shape[1]]], axis=0))


def relative_buckets(max_positions: int, buckets: int, max_distance: int) -> np.ndarray:
    """MPNet's (T5's bidirectional) bucket of each query-key distance j - i, for j - i = -(P-1) .. P-1.

    Half the buckets for keys after the query; distances below a quarter of the buckets exact, larger ones
    log-spaced up to max_distance. Computed in float32, as the original does, so boundaries fall alike."""
    distance = np.arange(-(max_positions - 1), max_positions)
    n = -distance
    half = buckets // 2
    exact = half // 2
    out = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    scaled = np.log(np.maximum(n, 1).astype(np.float32) / np.float32(exact)) \
        / np.float32(math.log(max_distance / exact)) * np.float32(half - exact)
    large = np.minimum(exact + scaled.astype(np.int64), half - 1)
    return (out + np.where(n < exact, n, large)).astype(np.int32)


class Encoder(tf.Module):
    """Token ids -> transformer layers -> mean pooling + L2 norm, every weight a tf.Variable."""

    def __init__(self, arch: Architecture, weights: dict[str, np.ndarray], tokenize: tf.Module, name: str):
        super().__init__(name=name)
        if problems := arch.problems():
            raise PipelineError(f"{name}: {'; '.join(problems)}")
        self.arch, self.tokenize = arch, tokenize
        if tokenize.max_length > self.usable_positions:
            raise PipelineError(f"max_length {tokenize.max_length} is over the model's {self.usable_positions} "
                                f"positions; use <= {self.usable_positions}")
        self.weights = self._variables(weights)
        if arch.relative_buckets:
            self.buckets = tf.constant(relative_buckets(arch.max_positions, arch.relative_buckets,
                                                        arch.relative_max_distance))

    @property
    def usable_positions(self) -> int:
        return self.arch.max_positions - (self.arch.pad_id + 1 if self.arch.positions == "after_padding" else 0)

    def _variables(self, w: dict[str, np.ndarray]) -> dict[str, tf.Variable]:
        """tf.Variables named after the original tensors; Linear weights transposed to [in, out]."""
        dense_weights = {self.name_of(role, i) + ".weight" for role in DENSE_ROLES for i in range(self.arch.layers)}
        missing = sorted(n for n in dense_weights | {self.arch.names["word"] + ".weight"} if n not in w)
        if missing:
            raise PipelineError(f"the weights lack {len(missing)} tensors the architecture needs, e.g. {missing[:3]}")
        out = {}
        for name, value in w.items():
            if name.startswith(self.arch.skip):
                continue  # the sentence embedding never uses the pooler; position ids are a range
            if name in dense_weights:
                value = value.T  # a torch Linear weight [out, in]
            out[name] = tf.Variable(np.ascontiguousarray(value, dtype=np.float32), name=name.replace(".", "/"))
        return out

    def name_of(self, role: str, i: int | None = None) -> str:
        return self.arch.names[role].format(i=i)

    def w(self, role: str, i: int | None = None, part: str = "weight") -> tf.Variable:
        return self.weights[f"{self.name_of(role, i)}.{part}"]

    def dense(self, x: tf.Tensor, role: str, i: int) -> tf.Tensor:
        return dense(x, self.w(role, i), self.w(role, i, "bias"))

    def norm(self, x: tf.Tensor, role: str, i: int | None = None) -> tf.Tensor:
        return layer_norm(x, self.w(role, i), self.w(role, i, "bias"), self.arch.eps)

    def layer_variables(self) -> list[list[tf.Variable]]:
        """Each encoder layer's variables, bottom first."""
        prefixes = [tuple(self.name_of(role, i) + "." for role in DENSE_ROLES + NORM_ROLES)
                    for i in range(self.arch.layers)]
        return [[v for name, v in self.weights.items() if name.startswith(p)] for p in prefixes]

    def embedding_variables(self) -> list[tf.Variable]:
        """The variables of no layer: the embeddings layer's (and the relative position bias)."""
        in_layers = {id(v) for layer in self.layer_variables() for v in layer}
        return [v for v in self.weights.values() if id(v) not in in_layers]

    @staticmethod
    def dropout(x: tf.Tensor, rate: float, training: bool) -> tf.Tensor:
        return tf.nn.dropout(x, rate) if training and rate > 0 else x

    # ---- the layers ----

    def attention(self, x: tf.Tensor, bias: tf.Tensor, i: int, training: bool, dtype: tf.DType) -> tf.Tensor:
        """Self-attention of layer i on float32 states x; products in `dtype`, softmax in float32."""
        batch, length, width = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
        size = width // self.arch.heads
        xc = tf.cast(x, dtype)

        def split(t):  # [B, T, H*D] -> [B, H, T, D]
            return tf.transpose(tf.reshape(t, [batch, length, self.arch.heads, size]), [0, 2, 1, 3])

        q, k, v = (split(self.dense(xc, role, i)) for role in ("query", "key", "value"))
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32) / math.sqrt(size) + bias
        probs = self.dropout(tf.nn.softmax(scores, axis=-1), self.arch.attention_dropout, training)
        context = tf.matmul(tf.cast(probs, dtype), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, length, width])
        return tf.cast(self.dense(context, "attention_output", i), tf.float32)

    def layer(self, x: tf.Tensor, bias: tf.Tensor, i: int, training: bool, dtype: tf.DType) -> tf.Tensor:
        rate = self.arch.hidden_dropout
        x = self.norm(x + self.dropout(self.attention(x, bias, i, training, dtype), rate, training), "attention_norm", i)
        hidden = gelu(self.dense(tf.cast(x, dtype), "intermediate", i))
        out = tf.cast(self.dense(hidden, "output", i), tf.float32)
        return self.norm(x + self.dropout(out, rate, training), "output_norm", i)

    def attention_bias(self, mask: tf.Tensor) -> tf.Tensor:
        """What every layer adds to its attention scores: -1e9 on padded keys, and the relative position bias."""
        bias = (1.0 - mask)[:, None, None, :] * -1e9  # padded keys get no attention
        if not self.arch.relative_buckets:
            return bias
        length = tf.shape(mask)[1]
        distance = tf.range(length)[None, :] - tf.range(length)[:, None]        # key - query
        bucket = tf.gather(self.buckets, distance + self.arch.max_positions - 1)
        per_head = tf.gather(self.w("relative_bias"), bucket)                  # [T, T, H]
        return bias + tf.transpose(per_head, [2, 0, 1])[None]

    def layers(self, x: tf.Tensor, mask: tf.Tensor, start, stop, training: bool = False,
               dtype: tf.DType = tf.float32) -> tf.Tensor:
        """Encoder layers start..stop-1 on float32 states x [B, T, W] (mask [B, T]: 1 = real token).

        From the bottom (start 0) in training, the embeddings' dropout comes first, as in BERT.
        start and stop may be int32 scalar tensors: then each layer runs under a tf.cond, so that one
        graph serves every split of the layers (the exported layer functions take n_top as a tensor).
        """
        bias = self.attention_bias(mask)
        if isinstance(start, int) and isinstance(stop, int):
            if start == 0:
                x = self.dropout(x, self.arch.hidden_dropout, training)
            for i in range(start, stop):
                x = self.layer(x, bias, i, training, dtype)
            return x
        if training:
            x = tf.cond(tf.equal(start, 0), lambda: self.dropout(x, self.arch.hidden_dropout, True), lambda: x)
        for i in range(self.arch.layers):
            x = tf.cond((start <= i) & (i < stop), lambda x=x, i=i: self.layer(x, bias, i, training, dtype),
                        lambda x=x: x)
        return x

    # ---- embeddings and pooling ----

    def embed_ids(self, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """The embeddings layer's output [B, T, W] (before its dropout) of token ids [B, T] padded past lengths [B]."""
        return self.embed_tokens(tf.gather(self.w("word"), ids), ids, lengths)

    def embed_tokens(self, vectors: tf.Tensor, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """embed_ids on the token table's rows of ids, gathered by the caller (a sparse gradient for the table)."""
        arch, length, x = self.arch, tf.shape(ids)[1], vectors
        if arch.positions == "absolute":
            x = x + self.w("position")[None, :length] + self.w("token_type")[0]
        else:   # RoBERTa's: real tokens numbered from pad_id + 1, as create_position_ids_from_input_ids does
            real = tf.cast(tf.sequence_mask(lengths, length) & tf.not_equal(ids, arch.pad_id), ids.dtype)
            x = x + tf.gather(self.w("position"), tf.cumsum(real, axis=1) * real + arch.pad_id)
        return self.norm(x, "embeddings_norm")

    def embed(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The embeddings layer's output [B, T, W] for texts and the mask [B, T] of real tokens."""
        ids = self.tokenize(texts)
        tokens = ids.to_tensor(self.arch.pad_id)
        lengths = ids.row_lengths()
        return self.embed_ids(tokens, lengths), tf.sequence_mask(lengths, tf.shape(tokens)[1], tf.float32)

    @staticmethod
    def pool(x: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """Mean over the real tokens, L2-normalised: the sentence embedding."""
        pooled = tf.reduce_sum(x * mask[:, :, None], axis=1) / tf.maximum(tf.reduce_sum(mask, 1, keepdims=True), 1e-9)
        return tf.math.l2_normalize(pooled, axis=1, epsilon=1e-24)  # = torch normalize's max(norm, 1e-12)

    # ---- the module's functions (savedmodel's protocol) ----

    def encode(self, texts: tf.Tensor, training: bool = False, dtype: tf.DType = tf.float32):
        """Last-layer states [B, T, W], padded to the batch's longest, and the mask [B, T] of real tokens."""
        x, mask = self.embed(texts)
        return self.layers(x, mask, 0, self.arch.layers, training, dtype), mask

    def __call__(self, texts: tf.Tensor, training: bool = False, compute_dtype: str = "float32") -> tf.Tensor:
        return self.pool(*self.encode(texts, training, tf.as_dtype(compute_dtype)))

    def token_embeddings(self, texts: tf.Tensor, compute_dtype: str = "float32") -> tf.RaggedTensor:
        """The last layer's state of every token, start and end tokens included: [B, (T), W], before pooling."""
        x, mask = self.encode(texts, dtype=tf.as_dtype(compute_dtype))
        return tf.RaggedTensor.from_tensor(x, lengths=tf.cast(tf.reduce_sum(mask, axis=1), tf.int64))

    def _split_at(self, n_top) -> tf.Tensor:
        """The first of the top n_top layers (an int32 scalar); an error unless 1 <= n_top <= the layer count."""
        n_top, layers = tf.convert_to_tensor(n_top, tf.int32), self.arch.layers
        with tf.control_dependencies([tf.debugging.assert_greater_equal(n_top, 1, message="n_top must be >= 1"),
                                      tf.debugging.assert_less_equal(n_top, layers,
                                                                     message=f"n_top must be <= {layers}")]):
            return tf.identity(layers - n_top)

    def bottom_states(self, texts: tf.Tensor, n_top, compute_dtype: str = "float32") -> tf.RaggedTensor:
        """Every token's state below the top n_top layers (n_top = all: the embeddings'), [B, (T), W].

        Inference mode (no dropout): a fine-tune that trains only the top n_top layers can cache these.
        """
        x, mask = self.embed(texts)
        x = self.layers(x, mask, 0, self._split_at(n_top), dtype=tf.as_dtype(compute_dtype))
        return tf.RaggedTensor.from_tensor(x, lengths=tf.cast(tf.reduce_sum(mask, axis=1), tf.int64))

    def top_layers(self, states: tf.Tensor, lengths: tf.Tensor, n_top, training: bool = False,
                   compute_dtype: str = "float32") -> tf.Tensor:
        """The top n_top layers on bottom_states padded to [B, T, W] (lengths [B]): last-layer states."""
        mask = tf.sequence_mask(lengths, tf.shape(states)[1], tf.float32)
        return self.layers(states, mask, self._split_at(n_top), self.arch.layers, training,
                           tf.as_dtype(compute_dtype))

    def pool_states(self, states: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """The sentence embedding of last-layer states [B, T, W] padded past lengths [B]."""
        return self.pool(states, tf.sequence_mask(lengths, tf.shape(states)[1], tf.float32))

    def export(self, dest) -> object:
        """Save the encoder as a hub module at `dest` (savedmodel's protocol, layer functions included)."""
        split = LayerSplit(self.layer_variables(), self.bottom_states, self.top_layers, self.pool_states,
                           self.arch.width, embedding_variables=self.embedding_variables(),
                           word_embeddings=self.w("word"), embed_tokens=self.embed_tokens)
        return export_text_encoder(dest, self.__call__, list(self.weights.values()),
                                   tokenize=lambda texts: self.tokenize(texts), token_embeddings=self.token_embeddings,
                                   layers=split, assets={"tokenizer": self.tokenize}, compute_dtypes=COMPUTE_DTYPES)
