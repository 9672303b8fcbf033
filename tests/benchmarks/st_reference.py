"""sentence-transformers itself, an outside reference for bench_encoders: token ids, embeddings, texts/s.

    <its venv>/bin/python tests/benchmarks/st_reference.py --model DIR --texts texts.json --out ref.npz
                                                           [--embed 200] [--speed 1000] [--batch 128] [--autocast]

Runs in the bench's own venv (torch, sentence-transformers, tokenizers), never the pipeline's: it imports
nothing of the project. Writes: the ids of every text by `tokenizers` on the folder's tokenizer.json (flat, and
each text's count), the float32 embeddings of the first --embed texts, and prints one JSON line with the
texts/s of encode(batch_size=--batch) over the first --speed texts in float32 and, with --autocast, under
torch.autocast(device_type="cpu", dtype=torch.bfloat16) (each after a warm-up; the best of two runs).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer


def texts_per_second(model, texts: list[str], batch: int, autocast: bool) -> float:
    def encode():
        if autocast:
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                return model.encode(texts, batch_size=batch, convert_to_numpy=True)
        return model.encode(texts, batch_size=batch, convert_to_numpy=True)

    model.encode(texts[:batch], batch_size=batch)                  # warm-up: not throughput
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        encode()
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--embed", type=int, default=200)
    ap.add_argument("--speed", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--autocast", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    texts = json.load(open(args.texts, encoding="utf-8"))
    tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tokenizer.no_padding()
    ids = [e.ids for e in tokenizer.encode_batch(texts)]
    model = SentenceTransformer(args.model, device="cpu")
    embeddings = model.encode(texts[:args.embed], batch_size=64, convert_to_numpy=True)
    np.savez(args.out, ids=np.concatenate([np.asarray(i, np.int64) for i in ids]),
             counts=np.array([len(i) for i in ids]), embeddings=embeddings.astype(np.float32))
    speed = texts[:args.speed]
    result = {"float32": texts_per_second(model, speed, args.batch, False), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "max_seq_length": model.max_seq_length}
    if args.autocast:
        result["autocast_bfloat16"] = texts_per_second(model, speed, args.batch, True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
