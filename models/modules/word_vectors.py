"""Word-vector files -> TF Hub text-embedding modules, in the manner of TF Hub's own text-embedding exporter.

    python -m models.modules.word_vectors --vectors glove.840B.300d.txt --name glove-840b-300d [--lowercase]
        [--vocab-limit 200000] [--oov-buckets 1000]

Reads the formats the competition ships: GloVe text (tokens may contain spaces: the vector is
parsed from the right), word2vec binary (.bin), fastText .vec (a "count dim" header line), and
paragram (latin-1 bytes: every text format is decoded as UTF-8 with errors ignored). The module
keeps the vocabulary as an asset, hashes unknown words into OOV buckets, tokenizes inside the
graph (optional lower-casing; punctuation split off as tokens) and combines token vectors with
sqrt-n: sum / sqrt(token count).

One module may combine several files (`vectors = [...]`): side by side (combine = "concat") or as a
weighted mean of the aligned vectors (combine = "mean", e.g. the 1st place's 0.7 GloVe + 0.3 paragram).
The vocabulary is the union of the files' words in the first file's frequency order (capped by
vocab_limit); a word a file lacks gets zeros there.
"""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterator

import numpy as np
from tqdm.auto import tqdm

import core  # noqa: F401  (environment for TensorFlow)
from core.cli import entry_point
from core.errors import PipelineError
from core.run import Run

# Split off every character that is not a letter, digit, mark, space or apostrophe ("don't" stays whole).
PUNCTUATION = r"([^\p{L}\p{N}\p{M}\s'])"


def read_vectors(path: Path, vocab_limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """(tokens, float32 vectors [n, dim]) in file order, which is frequency order for these files."""
    path = Path(path)
    tokens, vectors = [], []
    for token, vector in entries(path)[1]:
        tokens.append(token)
        vectors.append(vector())
        if vocab_limit and len(tokens) >= vocab_limit:
            break
    if not tokens:
        raise PipelineError(f"{path}: no vectors found; expected lines of 'token v1 ... vD'")
    return tokens, np.asarray(vectors, dtype=np.float32)


Entries = Iterator[tuple[str, Callable[[], np.ndarray]]]


def entries(path: Path) -> tuple[int, Entries]:
    """(dim, the file's (token, vector()) pairs in file order): a vector is parsed only when asked for."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: word-vector file not found")
    return (_word2vec_binary if path.suffix == ".bin" else _text)(path)


def _text(path: Path) -> tuple[int, Entries]:
    with open(path, "rb") as f:
        first = f.readline().split()
    has_header = len(first) == 2 and all(x.isdigit() for x in first)   # fastText .vec
    dim = int(first[1]) if has_header else _text_dim(path)

    def rows():
        with open(path, "rb") as f:
            if has_header:
                f.readline()
            for line_no, raw in enumerate(tqdm(f, desc=f"reading {path.name}", unit=" vectors", mininterval=2),
                                          start=2 if has_header else 1):
                fields = raw.rstrip(b"\r\n").split(b" ")
                if len(fields) < dim + 1:
                    raise PipelineError(f"{path}: line {line_no} has {len(fields) - 1} numbers, expected {dim}")
                yield (b" ".join(fields[:-dim]).decode("utf-8", errors="ignore"),
                       lambda numbers=fields[-dim:]: np.array(numbers, dtype=np.float32))
    return dim, rows()


def _text_dim(path: Path, sample: int = 100) -> int:
    """The vector size: tokens with spaces only add fields, so the fewest fields in a sample is 1 + dim."""
    with open(path, "rb") as f:
        counts = [len(line.rstrip(b"\r\n").split(b" ")) for _, line in zip(range(sample), f)]
    return min(counts) - 1


def _word2vec_binary(path: Path) -> tuple[int, Entries]:
    with open(path, "rb") as f:
        count, dim = (int(x) for x in f.readline().split())

    def rows():
        with open(path, "rb") as f:
            f.readline()
            for i in tqdm(range(count), desc=f"reading {path.name}", unit=" vectors", mininterval=2):
                token = bytearray()
                while (ch := f.read(1)) != b" ":
                    if not ch:
                        raise PipelineError(f"{path}: ends inside vector {i + 1} of {count}; the file is truncated")
                    if ch != b"\n":
                        token += ch
                data = f.read(4 * dim)
                yield token.decode("utf-8", errors="ignore"), lambda data=data: np.frombuffer(data, dtype="<f4")
    return dim, rows()


def usable_vocabulary(tokens: list[str], vectors: np.ndarray, lowercase: bool) -> tuple[list[str], np.ndarray]:
    """Tokens the in-graph tokenizer can produce, each once: the first (most frequent) spelling wins."""
    keep, seen = [], set()
    for i, token in enumerate(tokens):
        token = token.lower() if lowercase else token
        if usable(token) and token not in seen:
            seen.add(token)
            keep.append(i)
    return [tokens[i].lower() if lowercase else tokens[i] for i in keep], vectors[keep]


def usable(token: str) -> bool:
    """A token the in-graph tokenizer can produce: one word, no surrounding space."""
    return bool(token) and len(token.split()) == 1 and token.strip() == token


def combined_vectors(paths: list[Path], vocab_limit: int | None, lowercase: bool, combine: str,
                     weights: tuple[float, ...] | None = None) -> tuple[list[str], np.ndarray]:
    """Several files' vectors aligned on one vocabulary, then side by side ("concat") or a weighted mean ("mean").

    The vocabulary is the first file's usable words in its order (its first vocab_limit lines, as a
    single-file module reads), then each later file's new words in its order, up to vocab_limit in all.
    A word a file lacks is zeros there; the first spelling of a word in a file gives its vector there.
    """
    tokens, first = usable_vocabulary(*read_vectors(paths[0], vocab_limit), lowercase)
    index = {token: row for row, token in enumerate(tokens)}
    tables = [first]
    for path in paths[1:]:
        dim, rows = entries(path)
        found: dict[int, np.ndarray] = {}
        for token, vector in rows:
            token = token.lower() if lowercase else token
            row = index.get(token)
            if row is None and usable(token) and not (vocab_limit and len(tokens) >= vocab_limit):
                row = index[token] = len(tokens)
                tokens.append(token)
            if row is not None and row not in found:
                found[row] = vector()
                if vocab_limit and len(found) == len(tokens) == vocab_limit:
                    break                     # every word has its vector here and no new word fits
        table = np.zeros((len(tokens), dim), np.float32)
        if found:
            table[list(found)] = np.stack(list(found.values()))
        tables.append(table)
    tables = [np.concatenate([t, np.zeros((len(tokens) - len(t), t.shape[1]), np.float32)]) for t in tables]
    if combine == "concat":
        return tokens, np.concatenate(tables, axis=1)
    dims = {str(p): t.shape[1] for p, t in zip(paths, tables)}
    if len(set(dims.values())) > 1:
        raise PipelineError(f'combine = "mean" needs vectors of one size, but {dims}; use combine = "concat"')
    weights = weights or (1 / len(tables),) * len(tables)
    return tokens, sum(np.float32(w) * t for w, t in zip(weights, tables)).astype(np.float32)


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
    vectors: str | tuple[str, ...]    # the word-vector file, or a list of them; relative paths are under the workspace
    vocab_limit: int | None = None    # keep the first N (most frequent) words
    lowercase: bool = False           # lower-case texts and vocabulary
    oov_buckets: int = 1000
    combine: str = "concat"           # several files: "concat" (side by side) or "mean" (weighted, one size)
    weights: tuple[float, ...] | None = None   # combine = "mean": one per file, e.g. [0.7, 0.3]; default equal
    LATER: ClassVar[tuple[str, ...]] = ("combine", "weights")   # left out of the stamp at their defaults

    def files(self) -> tuple[str, ...]:
        return self.vectors if isinstance(self.vectors, tuple) else (self.vectors,)

    def problems(self) -> list[str]:
        n = len(self.files())
        return [rule for wrong, rule in (
            (n == 0, "vectors must name at least one file"),
            (self.combine not in ("concat", "mean"), 'combine must be "concat" or "mean"'),
            (self.weights is not None and self.combine != "mean", 'weights need combine = "mean"'),
            (self.weights is not None and len(self.weights) != n,
             f"weights must give one number per vectors file ({n}), not {len(self.weights or ())}"),
            (self.weights is not None and any(w < 0 for w in self.weights), "weights must not be negative"),
        ) if wrong]


def vectors_files(options: WordVectorOptions, workspace: Path) -> list[Path]:
    """The module's word-vector files; relative paths are under the workspace."""
    return [path if path.is_absolute() else workspace / path for path in map(Path, options.files())]


def build(dest: Path, options: WordVectorOptions, run: Run) -> Path:
    """The [modules] builder "word-vectors": one file as it is, several combined (`combined_vectors`)."""
    files = vectors_files(options, run.workspace)
    if len(files) == 1:
        tokens, vectors = read_vectors(files[0], options.vocab_limit)
    else:
        tokens, vectors = combined_vectors(files, options.vocab_limit, options.lowercase, options.combine,
                                           options.weights)
    return export_word_module(dest, tokens, vectors, options.oov_buckets, options.lowercase)


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Export word-vector files as a TF Hub text-embedding module.")
    parser.add_argument("--vectors", type=Path, required=True, nargs="+", help="one file, or several to combine")
    parser.add_argument("--name", required=True, help="the module folder: models/hub/<name>/")
    parser.add_argument("--vocab-limit", type=int, default=None, help="keep the first N (most frequent) words")
    parser.add_argument("--lowercase", action="store_true", help="lower-case texts and vocabulary")
    parser.add_argument("--oov-buckets", type=int, default=1000)
    parser.add_argument("--combine", default="concat", help="several files: concat or mean")
    parser.add_argument("--weights", type=float, nargs="+", default=None, help="--combine mean: one per file")
    args = parser.parse_args(argv)
    if not args.name or not all(str(v) for v in args.vectors):
        raise PipelineError("usage: make module VECTORS=path NAME=name")
    files = tuple(str(v.resolve()) for v in args.vectors)
    options = WordVectorOptions(files[0] if len(files) == 1 else files, args.vocab_limit, args.lowercase,
                                args.oov_buckets, args.combine, tuple(args.weights) if args.weights else None)
    if problems := options.problems():
        raise PipelineError("; ".join(problems))
    run = Run.from_environment()
    dest = build(run.hub_dir / args.name, options, run)
    print(f"{dest}: text-embedding module from {', '.join(map(str, args.vectors))}")


if __name__ == "__main__":
    main()
