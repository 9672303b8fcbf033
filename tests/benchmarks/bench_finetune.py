"""Fine-tuning on a CPU: MiniLM and all-mpnet-base-v2 frozen, partially fine-tuned (top n layers on cached
states) and fully fine-tuned, side by side with PyTorch and with the default precision against float32.

    python -m tests.benchmarks.bench_finetune [--parts blend,frozen,partial1,...,speed,precision]
                                              [--partial-folds 5] [--fresh]          (make bench ONLY=finetune)

On the shared sample's local competition (the quality bench's split and folds, input.local_competition
and folds.make_folds with the catalogue's seed) in a workspace of its own, submit/bench-finetune/, with
the modules built there by the current code. Each variant is a catalogue model (pipeline.toml), or a copy
of one with other trainable_layers, trained by the pipeline:
  frozen        `minilm-tokens`: the pooling head on MiniLM's cached last-layer token states;
  partial2      `minilm-partial` (trainable_layers = 2): the top 2 layers fine-tuned per fold on cached states;
  partialN      a copy of it with trainable_layers = N (1, 3);
  full          `minilm-tuned`: the whole module fine-tuned on token ids tokenized once, on fold 0 only;
  mpnet         `mpnet`: all-mpnet-base-v2 frozen, a head on its cached sentence embeddings;
  mpnet-tokens  `mpnet-tokens`: the pooling head on its int8-cached token states;
  mpnet-partialN `mpnet-partial` (n = 2) and copies with n = 1, 3 (--partial-folds of them);
  torch         the full recipe in PyTorch + transformers on fold 0, an outside reference, in a venv of its own
                (tests/benchmarks/torch_reference.py; skipped, saying why, when torch cannot be installed);
  blend         every member of the default blend (on all folds), then that blend with and without
                minilm-partial;
  speed         training steps alone on the same 1,024 rows, tracing excluded: the pipeline's full fine-tuning in
                float32 and bfloat16, the strings-in-the-step path it replaced, partial n = 1, 2, 3, and PyTorch's
                full recipe in float32 and under torch.autocast bfloat16 (where the CPU has bfloat16 units);
  breakdown     where a full fine-tuning step's time goes: tokenization, forward, backward, the optimizer, for
                strings in the step against token ids tokenized once;
  precision     every hub member of the default blend by default and under PRECISION=float32 (skipped, saying
                why, where the default is float32).
Finished folds are kept between runs (the pipeline resumes); --fresh starts from an empty workspace.
Seconds are wall time on this machine; examples/s = training rows x epochs / the folds' seconds (their
evaluation and prediction included); the one-off cache is reported apart. Every section names the CPU
and its bfloat16 flags. `run()` returns a markdown section.
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
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from core.artifacts import read_json, write_json
from core.paths import REPO, SHARED_SAMPLE
from core.run import Run
from tests.benchmarks.reference_env import cpu_line, has_bf16_units, reference_python

SPEED_ROWS = 1024
PARTIAL = "minilm-partial"      # the catalogue's partial member; the blend part measures the default without it
MPNET_PARTIAL = "mpnet-partial"
# part -> (the catalogue model, the overrides of its copy (None: the model itself), folds it trains: None = all)
VARIANTS = {"frozen": ("minilm-tokens", None, None),
            "partial1": (PARTIAL, {"trainable_layers": 1}, None),
            "partial2": (PARTIAL, None, None),
            "partial3": (PARTIAL, {"trainable_layers": 3}, None),
            "full": ("minilm-tuned", None, [0]),
            "mpnet": ("mpnet", None, None),
            "mpnet-tokens": ("mpnet-tokens", None, None),
            "mpnet-partial1": (MPNET_PARTIAL, {"trainable_layers": 1}, None),
            "mpnet-partial2": (MPNET_PARTIAL, None, None),
            "mpnet-partial3": (MPNET_PARTIAL, {"trainable_layers": 3}, None)}
PARTS = ("blend", *VARIANTS, "torch", "speed", "breakdown", "precision")


def workspace() -> Path:
    return Run.from_environment().submit_dir / "bench-finetune"


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
        folds = list(range(k)) if "partial" not in part else list(range(min(partial_folds, k)))
    return folds


def environment(ws: Path) -> dict:
    return {**os.environ, "PIPELINE_ROOT": str(ws), "CONFIG": str(ws / "pipeline.toml")}


def ws_run(ws: Path) -> Run:
    """The run of the bench's workspace, as `make` there would make it."""
    return Run.at(ws, ws / "pipeline.toml")


@contextmanager
def inside(ws: Path):
    """The workspace's configuration, train split and folds, read here as the pipeline reads them there."""
    from core.data import load_train
    from folds.make_folds import load_folds
    run = ws_run(ws)
    train = load_train(run)
    yield run.config, train, load_folds(run, train)


def python(args: list[str], ws: Path, **env: str) -> None:
    subprocess.run([sys.executable, *args], cwd=REPO, env={**environment(ws), **env}, check=True)


def prepare(ws: Path, fresh: bool, blend: bool) -> None:
    """The local competition, its folds and the modules (minilm; all for the blend), in the bench's workspace."""
    if fresh and ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "pipeline.toml").write_text(bench_config(), encoding="utf-8")
    if not (ws / "input" / "train.csv").exists():
        python(["-m", "input.local_competition", "--source", str(SHARED_SAMPLE)], ws)
    python(["-m", "folds.make_folds"], ws)
    python(["-m", "models.modules.build"] + ([] if blend else ["--name", "minilm", "--name", "all-mpnet-base-v2"]), ws)


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
    from core.data import load_competition
    from folds.make_folds import load_folds
    from models.catalogue import spec_of
    from models.kinds import KINDS
    from models.kinds.base import FoldData
    from models.train import fold_done, run_fold
    run = Run.from_environment()
    spec = spec_of(run.config, name)
    train, test = load_competition(run)
    fold = load_folds(run, train)
    trainer = KINDS[spec.kind](spec, run, train, test)
    out = run.model_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    device = trainer.device()
    start = time.time()
    facts = {"path": spec.kind, "devices": device, **trainer.prepare()}
    facts["prepare_seconds"] = time.time() - start
    write_json(out / "bench_prepare.json", facts)
    for k in folds:
        if not fold_done(out, k):
            run_fold(trainer, FoldData(k, np.flatnonzero(fold != k), np.flatnonzero(fold == k), out / f"fold{k}",
                                       f"{name} fold {k}"))


# ---- choosing the default ----

def candidate_blends(ws: Path, candidates: dict[str, list[str]]) -> list[dict]:
    """The default blend's method over each candidate member list, scored offline on the members' OOF predictions
    in `ws` exactly as ensembles.blend scores a blend (nested over folds), with the members' training minutes:
    quality per minute, to choose the CPU default's members. Candidates with a member not trained are left out."""
    from ensembles.blend import METHODS, nested_scores
    from core.results import score_section
    out = []
    with inside(ws) as (cfg, train, fold):
        y, method, metric = train.target, cfg.blend(cfg.default_blend).method, cfg.metric
        for label, members in candidates.items():
            folders = [ws / "models" / m for m in members]
            if not all((f / "metrics.json").exists() for f in folders):
                continue
            P = np.stack([np.load(f / "oof.npy") for f in folders], axis=1)
            fit = METHODS[method]
            scoring = score_section(metric, y, fit(P, y, fold, metric).oof, fold,
                                    refit=lambda k: nested_scores(fit, P, y, fold, k, metric))
            minutes = sum(read_json(f / "metrics.json")["wall_seconds"] for f in folders) / 60
            out.append({"label": label, "members": members, "oof": scoring["score"]["oof"],
                        "nested": scoring["score"]["nested"], "auc": scoring["oof"]["auc"], "minutes": minutes})
    return out


def candidate_lines(rows: list[dict]) -> list[str]:
    lines = ["", "The default blend's method over candidate member lists (offline, on the members trained here; "
             "minutes: the members' training, caches included):", "",
             "| members | OOF F1 | nested F1 | AUC | members' minutes |", "|---|---|---|---|---|"]
    lines += [f"| {r['label']}: {', '.join(r['members'])} | {_f(r['oof'])} | {_f(r['nested'])} | {_f(r['auc'])} "
              f"| {r['minutes']:.1f} |" for r in rows]
    return lines


# ---- the plan's throughputs ----

def record_throughputs(ws: Path, parts: list[str]) -> None:
    """models/throughputs.json's entry for this machine gains the catalogue models these parts trained on every
    fold, for `make plan` (tests/benchmarks/measured.py)."""
    from models.plan import hardware_of
    from tests.benchmarks.measured import record
    models = [VARIANTS[p][0] for p in parts if p in VARIANTS and VARIANTS[p][1] is None
              and (ws / "models" / VARIANTS[p][0] / "metrics.json").exists()]
    if models:
        run = ws_run(ws)
        record(run, hardware_of(run), models, run.config.blends["stacking"].method, cpu_line())


# ---- precision ----

def precision_compare(ws: Path) -> dict:
    """Every hub member of the default blend trained by default (this CPU's default precision, in the bench's
    workspace) and under PRECISION=float32 (in a sibling workspace with the same competition, folds and modules)."""
    from core.config import runs_here
    from models.catalogue import spec_of
    from models.devices import default_precision
    precision, why = default_precision("CPU", Run.from_environment().machine_cache)
    if precision == "float32":
        return {"skipped": f"the default precision here is float32 ({why}): nothing to compare"}
    with inside(ws) as (cfg, _, _):
        members = [m for m in cfg.blend(cfg.default_blend).members
                   if spec_of(cfg, m).kind != "tfidf" and runs_here(cfg.model(m), False)]
    other = ws.parent / f"{ws.name}-float32"
    for part in ("input", "folds"):
        if not (other / part).exists():
            shutil.copytree(ws / part, other / part)
    shutil.copy(ws / "pipeline.toml", other / "pipeline.toml")
    (other / "models").mkdir(exist_ok=True)
    if not (other / "models" / "hub").exists():
        (other / "models" / "hub").symlink_to(ws / "models" / "hub")
    rows = {}
    for member in members:
        python(["-m", "models.train", "--model", member], ws)
        python(["-m", "models.train", "--model", member], other, PRECISION="float32")
        rows[member] = [read_json(w / "models" / member / "metrics.json") for w in (ws, other)]
    return {"precision": precision, "why": why, "rows": rows}


def precision_lines(result: dict) -> list[str]:
    lines = ["", f"Every hub member of the default blend by default and under PRECISION=float32, on {cpu_line()}:", ""]
    if "skipped" in result:
        return lines + [f"skipped: {result['skipped']}"]
    lines += [f"The default here is {result['precision']}: {result['why']}.", "",
              f"| member | train s, {result['precision']} | train s, float32 | speed-up | OOF AUC, default | "
              "OOF AUC, float32 | OOF F1, default | OOF F1, float32 |", "|---|---|---|---|---|---|---|---|"]
    for member, (default, f32) in result["rows"].items():
        lines.append(f"| {member} | {default['wall_seconds']:.0f} | {f32['wall_seconds']:.0f} "
                     f"| {f32['wall_seconds'] / default['wall_seconds']:.2f}x | {_f(default['oof']['auc'])} "
                     f"| {_f(f32['oof']['auc'])} | {_f(default['score']['oof'])} | {_f(f32['score']['oof'])} |")
    return lines


# ---- the PyTorch reference ----

def torch_reference(ws: Path, spec) -> dict:
    """Fold 0 of the full recipe in PyTorch (tests/benchmarks/torch_reference.py): its scores and seconds."""
    out = ws / "torch"
    result_file = out / "result.json"
    if result_file.exists():
        return read_json(result_file)
    start = time.time()
    result = run_torch(ws, spec)
    if "skipped" in result:
        return result
    with inside(ws) as (_, _, fold):
        train_rows = int((fold != 0).sum())
    result = {"seconds": time.time() - start, "held": str(out / "held.npy"), "train_rows": train_rows,
              "epochs": spec.epochs, **result}
    write_json(result_file, result)
    return result


def run_torch(ws: Path, spec, *options: str) -> dict:
    """torch_reference.py on fold 0 in the reference's venv, with `options` (--speed N, --autocast): its JSON."""
    from tests.benchmarks.bench_encoders import model_folder
    py, why = reference_python(ws)
    if py is None:
        return {"skipped": why}
    out = ws / "torch"
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "data.json").exists():
        with inside(ws) as (_, train, fold):
            rows = {"fit": np.flatnonzero(fold != 0), "held": np.flatnonzero(fold == 0)}
        data = {part: {"texts": [str(t) for t in train.texts[r]], "labels": train.target[r].astype(int).tolist()}
                for part, r in rows.items()}
        (out / "data.json").write_text(json.dumps(data), encoding="utf-8")
    recipe = {k: getattr(spec, k) for k in ("module_lr", "lr", "clipnorm", "batch_size", "epochs", "dropout",
                                            "seed")} | {"head": list(spec.head), "max_length": 128}
    done = subprocess.run([str(py), str(Path(__file__).with_name("torch_reference.py")), "--model",
                           str(model_folder("minilm", ws)), "--data", str(out / "data.json"), "--out",
                           str(out / "held.npy"), "--recipe", json.dumps(recipe), *options],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return {"skipped": "the reference failed: " + " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- training speed, in CPU seconds ----

def speed(ws: Path, rows: int = SPEED_ROWS) -> list[dict]:
    """One epoch over the same `rows` fold-0 training rows per way of fine-tuning, after a warm-up epoch that
    traces the step for every batch shape: wall and CPU seconds of the steps alone (no evaluation, no
    prediction). The pipeline's full fine-tuning (token ids tokenized once) in float32 and bfloat16, the
    strings-in-the-step path it replaced, partial n = 1, 2, 3, and the PyTorch reference's full recipe in float32 and under torch.autocast bfloat16
    (where the CPU has bfloat16 units), each in its own process after the others, on this one machine."""
    import dataclasses

    import tf_keras as keras
    from models.devices import devices
    from models.batches import token_lengths
    from models.caches import cached_token_ids
    from models.handles import hub_layers, resolve_handles
    from models.batches import bucketed, text_dataset, token_dataset
    from models.networks import module_model, top_model
    from models.catalogue import spec_of
    from models.kinds.partial import bottom_states
    devices(ws_run(ws))                               # this process set up as a training process is
    out = []
    with inside(ws) as (cfg, train, fold):
        y = train.target.astype(np.float32)
        chosen = np.flatnonzero(fold != 0)[:rows]
        full_spec = spec_of(cfg, "minilm-tuned")
        full = full_spec.options
        [module] = resolve_handles(full_spec, ws_run(ws))
        steps = rows // full.batch_size
        ids, offsets = cached_token_ids(ws_run(ws), module, train.texts, "train")
        for dtype in ("float32", "bfloat16"):
            keras.utils.set_random_seed(0)
            keras.mixed_precision.set_global_policy("mixed_bfloat16" if dtype == "bfloat16" else "float32")
            model = top_model(full, module, None, steps, ids, dtype, from_ids=True)
            data = token_dataset(ids, offsets, bucketed(chosen, np.diff(offsets), full.batch_size, 0), y,
                                 full.batch_size)
            out.append(_timed_fit(f"full fine-tuning, token ids (minilm-tuned), {dtype}", model, data,
                                  len(chosen)))
        keras.mixed_precision.set_global_policy("float32")
        layers = hub_layers(full_spec, ws_run(ws), trainable=True)
        model = module_model(full, layers, steps_per_epoch=steps)
        data = text_dataset(train.texts, bucketed(chosen, token_lengths(layers[0].resolved_object, train.texts),
                                                  full.batch_size, 0), y, full.batch_size)
        out.append(_timed_fit("full fine-tuning, strings in the step (before), float32", model, data,
                              len(chosen)))
        for n in (1, 2, 3):
            spec = dataclasses.replace(spec_of(cfg, PARTIAL).options, trainable_layers=n)
            values, offsets = bottom_states(ws_run(ws), module, train.texts, "train", n)
            model = top_model(spec, module, n, rows // spec.batch_size, values)
            order = bucketed(chosen, np.diff(offsets), spec.batch_size, 0)
            data = token_dataset(values, offsets, order, y, spec.batch_size)
            out.append(_timed_fit(f"partial, top {n} layer{'s' * (n > 1)}, float32", model, data,
                                  len(chosen)))
    for autocast in (False, True):
        label = f"PyTorch + transformers, full recipe, {'torch.autocast bfloat16' if autocast else 'float32'}"
        if autocast and not has_bf16_units():
            out.append({"label": label, "skipped": "this CPU has no bfloat16 units"})
            continue
        result = run_torch(ws, full, "--speed", str(rows), *(["--autocast"] if autocast else []))
        out.append({"label": label, **result})
    return out


def _timed_fit(label: str, model, data, examples: int) -> dict:
    model.fit(data, epochs=1, verbose=0)              # traces the step for the batches' shapes: not throughput
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data, epochs=1, verbose=0)
    return {"label": label, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "examples": examples}


def breakdown(ws: Path, rows: int = SPEED_ROWS) -> list[dict]:
    """Where a full fine-tuning step's time goes, per batch of 32 over the same `rows` fold-0 rows (after a
    warm-up pass over the same batches, every shape traced): the strings-in-the-step path (tokenization, forward,
    forward + backward, the whole Keras step with Adam on every row of the token table) against token ids
    tokenized once (forward, forward + backward, the whole step with lazy Adam, and with plain Adam), float32."""
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras as keras
    from models.devices import devices
    from models.caches import cached_token_ids
    from models.handles import resolve_handles
    from models.batches import bucketed, token_dataset
    from models.catalogue import spec_of
    from models.handles import frozen
    from models.networks import module_model, top_model
    from models.training import warmup_then_linear
    devices(ws_run(ws))                               # this process set up as a training process is
    with inside(ws) as (cfg, train, fold):
        keras.mixed_precision.set_global_policy("float32")
        y = train.target.astype(np.float32)
        full_spec = spec_of(cfg, "minilm-tuned")
        full = full_spec.options
        [module] = resolve_handles(full_spec, ws_run(ws))
        ids, offsets = cached_token_ids(ws_run(ws), module, train.texts, "train")
        order = bucketed(np.flatnonzero(fold != 0)[:rows], np.diff(offsets), full.batch_size, 0)
        batches = [order[i:i + full.batch_size] for i in range(0, len(order), full.batch_size)]
        texts = [tf.constant(list(train.texts[b])) for b in batches]
        id_batches = [next(iter(token_dataset(ids, offsets, b, y, len(b)))) for b in batches]
        steps = len(batches)
        loaded = frozen(module)
        layer = hub.KerasLayer(module, trainable=True)
        variables = layer.trainable_variables

        @tf.function
        def strings_gradient(t):
            with tf.GradientTape() as tape:
                out = tf.reduce_sum(layer(t, training=True)[:, 0])
            return tape.gradient(out, variables)

        strings_model = module_model(full, [hub.KerasLayer(module, input_shape=[], dtype=tf.string, trainable=True)],
                                     steps)
        ids_model = top_model(full, module, None, steps, ids, from_ids=True)
        top = ids_model.get_layer("module_top")

        @tf.function
        def ids_gradient(x):
            with tf.GradientTape() as tape:
                out = tf.reduce_sum(top(x, training=True)[:, 0])
            return tape.gradient(out, top.trainable_weights)

        dense_model = top_model(full, module, None, steps, ids, from_ids=True)
        dense_model.module_optimizer = keras.optimizers.Adam(warmup_then_linear(full.module_lr, steps))
        tokenize = tf.function(lambda t: loaded.tokenize(t).to_tensor())
        infer = tf.function(lambda t: loaded(t))
        ways = [("strings: tokenization alone", lambda i: tokenize(texts[i])),
                ("strings: forward, inference", lambda i: infer(texts[i])),
                ("strings: forward + backward", lambda i: strings_gradient(texts[i])),
                ("strings: the whole step (Adam on the whole token table)",
                 _keras_step(strings_model, lambda i: (texts[i], tf.constant(y[batches[i]])), steps)),
                ("ids: forward, inference", lambda i: top(id_batches[i][0], training=False)),
                ("ids: forward + backward", lambda i: ids_gradient(id_batches[i][0])),
                ("ids: the whole step (lazy Adam: the batch's rows of the token table)",
                 _keras_step(ids_model, lambda i: id_batches[i], steps)),
                ("ids: the whole step, plain Adam", _keras_step(dense_model, lambda i: id_batches[i], steps))]
        out = []
        for label, run_step in ways:
            for i in range(steps):
                _value(run_step(i))                       # traced for every batch's shape, warm: not throughput
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(steps):
                _value(run_step(i))
            out.append({"label": label, "ms": 1000 * (time.perf_counter() - wall) / steps,
                        "cpu_ms": 1000 * (time.process_time() - cpu) / steps})
    return out


def _keras_step(model, batch, n: int):
    """One Keras training step on batch(i) of n, the model's own compiled train function (datasets made ahead)."""
    import tensorflow as tf
    step = model.make_train_function()
    data = [tf.data.Dataset.from_tensors(batch(i)) for i in range(n)]
    return lambda i: step(iter(data[i]))


def _value(result):
    """Wait for a step's result (eager tensors may still be computing)."""
    import tensorflow as tf
    for t in tf.nest.flatten(result):
        if hasattr(t, "numpy"):
            t.numpy()
            return


def breakdown_lines(rows: list[dict]) -> list[str]:
    lines = ["", f"A full fine-tuning step's time, batch 32 (MiniLM, float32, {cpu_line()}):", "",
             "| part | ms a step | CPU ms a step |", "|---|---|---|"]
    return lines + [f"| {r['label']} | {r['ms']:.0f} | {r['cpu_ms']:.0f} |" for r in rows]


def speed_lines(rows: list[dict]) -> list[str]:
    torch = next((r for r in rows if r["label"].startswith("PyTorch") and "wall" in r), None)
    examples = rows[0]["examples"]
    lines = ["", f"Training steps alone, {examples:,} fold-0 rows, one epoch after a warm-up epoch (every batch "
             f"shape traced), on {cpu_line()} (wall seconds; CPU seconds are the process's own, barely moved by "
             "other jobs):", "",
             "| way | wall s | CPU s | examples/s | vs PyTorch float32 | per CPU second, vs PyTorch |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "wall" not in r:
            lines.append(f"| {r['label']} | not run: {r.get('skipped', '')} | | | | |")
            continue
        ratios = f"{torch['wall'] / r['wall']:.2f}x | {torch['cpu'] / r['cpu']:.2f}x" if torch else " | "
        lines.append(f"| {r['label']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['examples'] / r['wall']:,.1f} "
                     f"| {ratios} |")
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
            speeds: list[dict] | None = None, precision: dict | None = None, steps: list[dict] | None = None) -> str:
    title = "## Fine-tuning MiniLM and all-mpnet-base-v2 on a CPU: frozen, partial (top n layers), full\n"
    lines = [title, f"Shared sample's local competition (15,999 train rows, {k} folds), {cpu_line()}; seconds are "
             "wall time. OOF figures over the folds each variant ran (nested F1 only where all ran); fold 0's F1 (at its own best threshold) and AUC side by side for all.",
             "", "| variant | folds run | OOF F1 | nested F1 | AUC | log loss | fold-0 F1 | fold-0 AUC | examples/s "
             "| s a fold | one-off cache s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    names = {"frozen": "frozen (minilm-tokens: pooling head on cached last-layer states)",
             "partial1": "partial, top 1 layer (trainable_layers = 1)",
             "partial2": "partial, top 2 layers (minilm-partial, trainable_layers = 2)",
             "partial3": "partial, top 3 layers", "full": "full fine-tuning (minilm-tuned), fold 0 only",
             "mpnet": "all-mpnet-base-v2 frozen (mpnet: head on cached sentence embeddings)",
             "mpnet-tokens": "all-mpnet-base-v2 frozen (mpnet-tokens: pooling head on int8 cached token states)",
             "mpnet-partial1": "all-mpnet-base-v2 partial, top 1 of 12 layers",
             "mpnet-partial2": "all-mpnet-base-v2 partial, top 2 layers (mpnet-partial)",
             "mpnet-partial3": "all-mpnet-base-v2 partial, top 3 layers"}
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
    if steps:
        lines += breakdown_lines(steps)
    if blend:
        lines += blend_lines(blend)
    if precision:
        lines += precision_lines(precision)
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
            spec = spec_of(cfg, model_name("full")).options
        torch = torch_reference(ws, spec)
        if "held" in torch:
            torch.update(_torch_scores(ws, torch))
    speeds = speed(ws) if "speed" in chosen else None
    steps = breakdown(ws) if "breakdown" in chosen else None
    precision = precision_compare(ws) if "precision" in chosen else None
    record_throughputs(ws, chosen)
    results = {p: scores(p, ws, k) for p in VARIANTS if p in chosen}
    return section(results, torch, k, time.time() - start, blend, speeds, precision, steps)


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
