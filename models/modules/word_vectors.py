"""Word-vector files -> TF Hub text-embedding modules, in the manner of TF Hub's own text-embedding exporter.

    python -m models.modules.word_vectors --vectors glove.840B.300d.txt --name glove-840b-300d [--lowercase]
        [--vocab-limit 200000] [--oov-buckets 1000]

Reads the formats the competition ships: GloVe text (tokens may contain spaces: the vector is
parsed from the right), word2vec binary (.bin), fastText .vec (a "count dim" header line), and
paragram (latin-1 bytes: every text format is decoded as UTF-8 with errors ignored). The module
keeps the vocabulary as an asset, hashes unknown words into OOV buckets, tokenizes inside the
graph (optional lower-casing; punctuation split off as tokens) and combines token vectors with
sqrt-n: sum / sqrt(token count).
"""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import core  # noqa: F401  (environment for TensorFlow)
from core.cli import entry_point
from core.errors import PipelineError
from core.paths import hub_dir, workspace

# Split off every character that is not a letter, digit, mark, space or apostrophe ("don't" stays whole).
PUNCTUATION = r"([^\p{L}\p{N}\p{M}\s'])"


def read_vectors(path: Path, vocab_limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """(tokens, float32 vectors [n, dim]) in file order, which is frequency order for these files."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: word-vector file not found")
    reader = _read_word2vec_binary if path.suffix == ".bin" else _read_text
    tokens, vectors = reader(path, vocab_limit)
    if not tokens:
        raise PipelineError(f"{path}: no vectors found; expected lines of 'token v1 ... vD'")
    return tokens, np.asarray(vectors, dtype=np.float32)


def _read_text(path: Path, limit: int | None):
    with open(path, "rb") as f:
        first = f.readline().split()
        has_header = len(first) == 2 and all(x.isdigit() for x in first)   # fastText .vec
        dim = int(first[1]) if has_header else _text_dim(path)
        if not has_header:
            f.seek(0)
        tokens, vectors = [], []
        for line_no, raw in enumerate(tqdm(f, desc=f"reading {path.name}", unit=" vectors", mininterval=2),
                                      start=2 if has_header else 1):
            fields = raw.rstrip(b"\r\n").split(b" ")
            if len(fields) < dim + 1:
                raise PipelineError(f"{path}: line {line_no} has {len(fields) - 1} numbers, expected {dim}")
            tokens.append(b" ".join(fields[:-dim]).decode("utf-8", errors="ignore"))
            vectors.append(np.array(fields[-dim:], dtype=np.float32))
            if limit and len(tokens) >= limit:
                break
    return tokens, vectors


def _text_dim(path: Path, sample: int = 100) -> int:
    """The vector size: tokens with spaces only add fields, so the fewest fields in a sample is 1 + dim."""
    with open(path, "rb") as f:
        counts = [len(line.rstrip(b"\r\n").split(b" ")) for _, line in zip(range(sample), f)]
    return min(counts) - 1


def _read_word2vec_binary(path: Path, limit: int | None):
    with open(path, "rb") as f:
        count, dim = (int(x) for x in f.readline().split())
        count = min(count, limit) if limit else count
        tokens, vectors = [], np.empty((count, dim), dtype=np.float32)
        for i in tqdm(range(count), desc=f"reading {path.name}", unit=" vectors", mininterval=2):
            token = bytearray()
            while (ch := f.read(1)) != b" ":
                if not ch:
                    raise PipelineError(f"{path}: ends inside vector {i + 1} of {count}; the file is truncated")
                if ch != b"\n":
                    token += ch
            tokens.append(token.decode("utf-8", errors="ignore"))
            vectors[i] = np.frombuffer(f.read(4 * dim), dtype="<f4")
    return tokens, vectors


def usable_vocabulary(tokens: list[str], vectors: np.ndarray, lowercase: bool) -> tuple[list[str], np.ndarray]:
    """Tokens the in-graph tokenizer can produce, each once: the first (most frequent) spelling wins."""
    keep, seen = [], set()
    for i, token in enumerate(tokens):
        token = token.lower() if lowercase else token
        if token and len(token.split()) == 1 and token.strip() == token and token not in seen:
            seen.add(token)
            keep.append(i)
    return [tokens[i].lower() if lowercase else tokens[i] for i in keep], vectors[keep]


def export_word_module(dest: Path, tokens: list[str], vectors: np.ndarray, oov_buckets: int = 1000,
                       lowercase: bool = False) -> Path:
    import tensorflow as tf
    from models.modules.savedmodel import export_text_encoder

    tokens, vectors = usable_vocabulary(tokens, vectors, lowercase)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "tokens.txt"
        vocab_file.write_text("\n".join(tokens) + "\n", encoding="utf-8")
        vocab = tf.saved_model.Asset(str(vocab_file))
        table = tf.lookup.StaticVocabularyTable(
            tf.lookup.TextFileInitializer(vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                          tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
            num_oov_buckets=oov_buckets)
        # OOV buckets start at zero: a frozen module ignores unknown words, a fine-tuned one learns them.
        table_init = np.concatenate([vectors, np.zeros((oov_buckets, vectors.shape[1]), np.float32)])
        embeddings = tf.Variable(table_init, name="embeddings")

        def tokenize(sentences):           # [B, (words)] ids
            text = tf.strings.lower(sentences, encoding="utf-8") if lowercase else sentences
            return table.lookup(tf.strings.split(tf.strings.regex_replace(text, PUNCTUATION, r" \1 ")))

        def token_embeddings(sentences):   # [B, (words), dim]
            return tf.ragged.map_flat_values(tf.nn.embedding_lookup, embeddings, tokenize(sentences))

        def encode(sentences):
            vectors_per_word = token_embeddings(sentences)
            count = tf.cast(vectors_per_word.row_lengths(), tf.float32)[:, None]
            return tf.reduce_sum(vectors_per_word, axis=1) / tf.sqrt(tf.maximum(count, 1.0))

        return export_text_encoder(dest, encode, [embeddings], tokenize=tokenize, token_embeddings=token_embeddings,
                                   assets={"vocab": vocab, "table": table})


@dataclass(frozen=True)
class WordVectorOptions:
    """The [modules] table of the builder "word-vectors"."""
    vectors: str                      # the word-vector file; relative paths are under the workspace
    vocab_limit: int | None = None    # keep the first N (most frequent) words
    lowercase: bool = False           # lower-case texts and vocabulary
    oov_buckets: int = 1000


def vectors_file(options: WordVectorOptions) -> Path:
    path = Path(options.vectors)
    return path if path.is_absolute() else workspace() / path


def build(dest: Path, options: WordVectorOptions) -> Path:
    """The [modules] builder "word-vectors"."""
    tokens, vectors = read_vectors(vectors_file(options), options.vocab_limit)
    return export_word_module(dest, tokens, vectors, options.oov_buckets, options.lowercase)


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Export a word-vector file as a TF Hub text-embedding module.")
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--name", required=True, help="the module folder: models/hub/<name>/")
    parser.add_argument("--vocab-limit", type=int, default=None, help="keep the first N (most frequent) words")
    parser.add_argument("--lowercase", action="store_true", help="lower-case texts and vocabulary")
    parser.add_argument("--oov-buckets", type=int, default=1000)
    args = parser.parse_args(argv)
    if not args.name or not str(args.vectors):
        raise PipelineError("usage: make module VECTORS=path NAME=name")
    dest = build(hub_dir() / args.name, WordVectorOptions(str(args.vectors.resolve()), args.vocab_limit,
                                                          args.lowercase, args.oov_buckets))
    print(f"{dest}: text-embedding module from {args.vectors}")


if __name__ == "__main__":
    main()
