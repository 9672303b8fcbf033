"""What a finished bench workspace measured, written where the plan reads it: models/throughputs.json.

For the workspace's kind of hardware (cpu-float32, cpu-bfloat16, or a GPU's name), each trained model's rates
(texts a second through its own caching pass, training examples a second, epochs run), each module's build
minutes, this machine's matrix-product speed (the plan scales other CPUs by it), and the order in which the
models gained the most nested score per minute: a forward selection over the blend's method, on the models'
out-of-fold predictions, each step taking the model whose nested gain per minute is largest.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.artifacts import read_json
from core.run import Run

MIN_GAIN = 0.0005        # a model adding less nested score to the blend than this adds nothing (noise)


def rates(run: Run, models: list[str]) -> dict:
    """Each finished model's rates. A frozen model whose pass found its cache filled by another model (its
    module's partial one) is timed on its own over COLD texts, in a cache of its own."""
    rows = len(_texts(run, "train")) + len(_texts(run, "test"))
    out = {}
    for m in models:
        metrics = read_json(run.model_dir(m) / "metrics.json")
        embed = metrics.get("embed_seconds", 0.0)
        cold = embed_rate(run, m) if embed <= 1 and metrics.get("path") == "frozen" else None
        out[m] = {"embed_texts_per_s": rows / embed if embed > 1 else cold,
                  "train_examples_per_s": metrics["examples_per_second"],
                  "epochs": sum(f["epochs"] for f in metrics["folds"]) / len(metrics["folds"]),
                  "minutes": metrics["wall_seconds"] / 60,
                  "nested": metrics["score"]["nested"]}
    return out


COLD = 2000              # texts a frozen model's own pass is timed on, where its cache was filled by another


def embed_rate(run: Run, name: str) -> float:
    """Texts a second of a frozen model's caching pass alone: COLD train texts into a fresh cache."""
    import tempfile
    import time
    from models.caches import cached_embeddings
    from models.catalogue import spec_of
    from models.devices import devices
    from models.handles import resolve_handles
    spec, texts = spec_of(run.config, name), _texts(run, "train")[:COLD]
    with tempfile.TemporaryDirectory(prefix="cold-") as tmp:
        fresh = run.with_(workspace=Path(tmp))          # the same modules (resolved in `run`), an empty cache
        start = time.perf_counter()
        for module in resolve_handles(spec, run):
            cached_embeddings(fresh, module, texts, "cold", devices(run).compute_dtype)
        return len(texts) / (time.perf_counter() - start)


def module_builds(run: Run) -> dict:
    """Minutes each built module took (its build.json, written by models.modules.build)."""
    return {p.parent.name: read_json(p)["seconds"] / 60 for p in sorted(run.hub_dir.glob("*/build.json"))}


def blend_nested(run: Run, members: list[str], method: str) -> float:
    """The nested score of `method` blending `members`' OOF predictions, as ensembles.blend scores a blend."""
    from core.data import load_train
    from core.results import score_section
    from ensembles.blend import METHODS, nested_scores
    from folds.make_folds import load_folds
    train = load_train(run)
    y, fold, metric = train.target.astype(np.int64), load_folds(run, train), run.config.metric
    P = np.stack([np.load(run.model_dir(m) / "oof.npy") for m in members], axis=1).astype(np.float64)
    fit = METHODS[method]
    return score_section(metric, y, fit(P, y, fold, metric).oof, fold,
                         refit=lambda k: nested_scores(fit, P, y, fold, k, metric))["score"]["nested"]


def forward_order(run: Run, measured: dict, method: str) -> list[list]:
    """[model, nested score of the blend with it and those before, gain, minutes] in the order of the largest
    nested gain per minute; models whose gain is under MIN_GAIN come last, marked by a gain of 0 or less."""
    left, chosen, order, score = dict(measured), [], [], 0.0
    while left:
        trials = {m: blend_nested(run, chosen + [m], method) if chosen else left[m]["nested"] for m in left}
        best = max(left, key=lambda m: (trials[m] - score) / max(left[m]["minutes"], 0.05))
        gain = trials[best] - score
        if gain < MIN_GAIN:
            order += [[m, None, 0.0, left[m]["minutes"]] for m in sorted(left, key=lambda m: -trials[m])]
            break
        chosen.append(best)
        order.append([best, trials[best], gain, left.pop(best)["minutes"]])
        score = trials[best]
    return order


def record(run: Run, hardware: str, models: list[str], method: str, machine: str) -> Path:
    """models/throughputs.json's entry for `hardware`, from the finished workspace of `run`."""
    from models.plan import THROUGHPUTS, load_throughputs, matmul_gflops
    measured = rates(run, models)
    table = load_throughputs()
    old = table.get(hardware, {})
    for m, r in measured.items():
        if r["embed_texts_per_s"] is None:
            r["embed_texts_per_s"] = old.get("models", {}).get(m, {}).get("embed_texts_per_s")
    entry = {"machine": machine, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
             "rows": {"train": len(_texts(run, "train")), "test": len(_texts(run, "test"))},
             "models": {m: {k: r[k] for k in ("embed_texts_per_s", "train_examples_per_s", "epochs")}
                        for m, r in measured.items()},
             "modules": {**old.get("modules", {}), **module_builds(run)},
             "order": forward_order(run, measured, method), "blend_method": method}
    if hardware.startswith("cpu"):
        entry["machine_speed"] = {"gflops": matmul_gflops(run.machine_cache, hardware.split("-")[1])}
    table[hardware] = entry
    THROUGHPUTS.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return THROUGHPUTS


def _texts(run: Run, split: str):
    from core.data import load_test, load_train
    return (load_train if split == "train" else load_test)(run).texts
