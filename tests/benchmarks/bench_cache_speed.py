"""Frozen-module training through the embedding cache against the hub layer running every epoch.

    python -m tests.benchmarks.bench_cache_speed [--module use-m3] [--epochs 5] [--rows N]

On the shared real sample (19,999 labelled Quora questions, split 80/20 stratified), side by
side in one process, with the same head, batch size and epochs (early stopping cannot end them):

  (a) cache, cold: the pipeline's path for frozen modules, `cached_embeddings` (every text
      embedded once, into a fresh cache) then `cached_model` trained on the cached vectors;
  (a') cache, warm: the same with the cache already on disk (what every later fold, model
      re-run or head change costs);
  (b) hub layer: `module_model` on a frozen `hub_layer`, strings in, as a plain Keras tutorial
      does: the module embeds every training and validation text again every epoch.

Examples/s = training rows x epochs / seconds from loading the module to the end of the fit, so
(a) includes its one-off embedding. The workspace (PIPELINE_ROOT) is a temporary folder with the
module symlinked in, so the cache starts empty. `run()` returns a markdown section.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from core.config import Config
from core.data import Split, labelled, read_table
from core.metrics import best_threshold
from core.paths import SHARED_SAMPLE, REPO
from core.run import Run
from models.catalogue import spec_of
from models.kinds.base import ModelSpec

SAMPLE = SHARED_SAMPLE
MODULES = ("use-m3", "glove-6b-50d", "minilm")   # the default: the first one that builds
EPOCHS = 5
TARGET = 5.0                             # the speed-up the cache should give, cold, on one 5-epoch fit


@dataclasses.dataclass
class Timing:
    label: str
    prepare_s: float          # loading the module (and, for the cache, embedding every text once)
    fit_s: float
    cpu_s: float              # this process's CPU seconds over both: barely moved by other jobs on the cores
    examples: int             # training rows x epochs
    val_f1: float             # best-threshold F1 on the validation split: both paths learn the same thing

    @property
    def wall_s(self) -> float:
        return self.prepare_s + self.fit_s

    @property
    def per_s(self) -> float:
        return self.examples / self.wall_s


@contextlib.contextmanager
def temporary_workspace(base: Run):
    """The run in a fresh, temporary workspace: so a fresh embedding cache."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        yield base.with_(workspace=Path(tmp))


def provide_module(run: Run, name: str) -> None:
    """The repository's built module symlinked into the temporary workspace, or built there."""
    from models.modules.build import build_module, is_built
    built = REPO / "models" / "hub" / name
    dest = run.hub_dir / name
    if is_built(built):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(built, target_is_directory=True)
    else:
        build_module(run, run.config.modules[name])
    if not is_built(dest):
        raise RuntimeError(f"module {name} could not be provided at {dest}")


def first_module(run: Run, wanted: str | None) -> tuple[str, list[str]]:
    """The module to benchmark and notes on those that could not be used."""
    cfg, notes = run.config, []
    for name in [wanted] if wanted else MODULES:
        try:
            provide_module(run, name)
            return name, notes
        except Exception as e:  # noqa: BLE001  (any build failure: fall back, and say why)
            notes.append(f"{name} unavailable ({type(e).__name__}: {e})")
    raise RuntimeError("; ".join(notes))


def load_sample(cfg: Config, rows: int | None) -> Split:
    """The shared sample, validated as a train.csv is; the first `rows` rows when asked (quick runs)."""
    df = read_table(SAMPLE, [cfg.competition.id, cfg.competition.text, cfg.competition.target])
    return labelled(df.iloc[:rows] if rows else df, cfg, SAMPLE.name)


def split(target: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split
    return train_test_split(np.arange(len(target)), test_size=0.2, stratify=target, random_state=seed)


def bench_spec(cfg: Config, name: str, epochs: int) -> ModelSpec:
    """The catalogue entry (a frozen one), for exactly `epochs` epochs (patience = epochs never stops a fit that
    short), at a plain Keras tutorial's batch size (the Keras default, 32) for both paths."""
    spec = spec_of(cfg, name)
    return dataclasses.replace(spec, options=dataclasses.replace(spec.options, epochs=epochs, patience=epochs,
                                                                 batch_size=32))


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _val_f1(model, x_val, y_val, batch: int) -> float:
    return best_threshold(y_val, model.predict(dataset(x_val, None, batch, False, 0), verbose=0).reshape(-1))[1]


def dataset(x, y, batch_size: int, shuffle: bool, seed: int):
    """In-memory batches, as a Keras tutorial feeds them (both paths here: the comparison is the embedding)."""
    import tensorflow as tf
    data = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x)
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def cache_path(label, spec, run, sample, trn, val, log_dir) -> Timing:
    """(a): embed every text once through the cache (skipped when cached), then train the head on arrays."""
    import tf_keras as keras
    from models.devices import devices
    from models.caches import cached_embeddings
    from models.handles import resolve_handles
    from models.networks import cached_model
    keras.utils.set_random_seed(spec.options.seed)
    y = sample.target.astype(np.float32)
    t0, c0 = _clock()
    x = cached_embeddings(run, resolve_handles(spec, run)[0], sample.texts, "sample")
    x_trn, x_val = np.asarray(x[trn]), np.asarray(x[val])
    t1 = time.perf_counter()
    with devices(run).strategy.scope():
        model = cached_model(spec.options, x.shape[1], devices(run).xla)
    return timed_fit(model, label, spec, x_trn, x_val, y, trn, val, log_dir, (t0, c0, t1))


def timed_fit(model, label, spec, x_trn, x_val, y, trn, val, log_dir, started) -> Timing:
    """Fit (the part both paths share) and time it; `started` = (wall, CPU) at module load, wall at fit start."""
    from models.training import fit
    t0, c0, t1 = started
    fit(model, dataset(x_trn, y[trn], spec.options.batch_size, True, spec.options.seed),
        dataset(x_val, y[val], spec.options.batch_size, False, 0), spec.options, steps=-(-len(trn) // spec.options.batch_size),
        label=label, log_dir=log_dir)
    t2, c2 = _clock()
    return Timing(label, t1 - t0, t2 - t1, c2 - c0, len(trn) * spec.options.epochs,
                  _val_f1(model, x_val, y[val], spec.options.batch_size))


def hub_path(label, spec, run, sample, trn, val, log_dir) -> Timing:
    """(b): strings in, the frozen hub layer embeds every batch of every epoch (training and validation)."""
    import tf_keras as keras
    from models.devices import devices
    from models.handles import hub_layers
    from models.networks import module_model
    keras.utils.set_random_seed(spec.options.seed)
    y = sample.target.astype(np.float32)
    x_trn, x_val = sample.texts[trn], sample.texts[val]
    t0, c0 = _clock()
    with devices(run).strategy.scope():
        model = module_model(spec.options, hub_layers(spec, run, trainable=False), trainable=False)
    t1 = time.perf_counter()
    return timed_fit(model, label, spec, x_trn, x_val, y, trn, val, log_dir, (t0, c0, t1))


def report(name: str, spec: ModelSpec, sample: Split, trn, val, timings: list[Timing], notes: list[str],
           cfg_k: int) -> str:
    cold, warm, hub = timings
    texts = len(trn) + len(val)
    lines = ["## Frozen module: embedding cache vs hub layer every epoch\n",
             f"Module `{name}` (frozen), head {list(spec.options.head)}, batch {spec.options.batch_size}, {spec.options.epochs} epochs "
             f"(no early stopping), on the shared real sample: {len(trn):,} training and {len(val):,} validation "
             f"questions (80/20 stratified, {sample.target.mean():.2%} positive); {os.cpu_count()} CPU cores, "
             "one process, run one after the other.\n",
             "| path | module load + embed s | fit s | wall s | CPU s | cores busy | examples/s | val F1 (best thr.) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {t.label} | {t.prepare_s:.1f} | {t.fit_s:.1f} | {t.wall_s:.1f} | {t.cpu_s:.1f} | "
              f"{t.cpu_s / t.wall_s:.2f} | {t.per_s:,.0f} | {t.val_f1:.4f} |" for t in timings]
    lines += ["",
              f"- cache (cold, one-off embedding included) / hub layer: **{cold.per_s / hub.per_s:.2f}x** examples/s "
              f"({hub.cpu_s / cold.cpu_s:.2f}x in CPU seconds; target >= {TARGET:g}x)",
              f"- cache (warm: a later fold, re-run or head change) / hub layer: **{warm.per_s / hub.per_s:.2f}x** "
              f"({hub.cpu_s / warm.cpu_s:.2f}x in CPU seconds)",
              "- examples/s = training rows x epochs / wall seconds from module load to the end of the fit; "
              "both fits also score the validation split every epoch (the hub path re-embeds it each time)",
              f"- both paths embed the same {texts:,} texts, the cache once ({texts / cold.prepare_s:,.0f} texts/s, "
              f"module load included) and the hub layer every epoch ({texts * spec.options.epochs / hub.fit_s:,.0f} texts/s, "
              f"head steps included): paying the same CPU per text, the ratio would stay below {spec.options.epochs} "
              "(the epochs); it goes above that in wall time where the one-off embedding keeps more cores busy "
              "than a Keras training step running the hub layer (cores busy = CPU s / wall s)",
              f"- over the {cfg_k} folds of one model (computed from the rows above, not measured): cold + "
              f"{cfg_k - 1} x warm against {cfg_k} x hub layer = "
              f"**{cfg_k * hub.wall_s / (cold.wall_s + (cfg_k - 1) * warm.wall_s):.2f}x**",
              f"- load average at the end: {os.getloadavg()[0]:.1f} (above {os.cpu_count()} means other jobs "
              "shared the cores; the ratio is the figure to read, CPU seconds are the steadier one)"]
    lines += [f"- note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def run(module: str | None = None, epochs: int = EPOCHS, rows: int | None = None) -> str:
    """Both paths on the shared sample; a markdown section (or why it was skipped)."""
    title = "## Frozen module: embedding cache vs hub layer every epoch\n\n"
    if not SAMPLE.is_file():
        return f"{title}skipped: {SAMPLE} not found (the shared real-data sample).\n"
    base = Run.from_environment()
    cfg = base.config
    sample = load_sample(cfg, rows)
    with temporary_workspace(base) as run:
        ws = run.workspace
        name, notes = first_module(run, module)
        spec = bench_spec(cfg, name, epochs)
        trn, val = split(sample.target, spec.options.seed)
        args = (spec, run, sample, trn, val)
        timings = [cache_path("(a) cache, cold (embeds once)", *args, ws / "logs-a"),
                   cache_path("(a') cache, warm", *args, ws / "logs-a2"),
                   hub_path("(b) hub layer every epoch", *args, ws / "logs-b")]
    return report(name, spec, sample, trn, val, timings, notes, cfg.folds.k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", choices=MODULES, help=f"default: the first of {', '.join(MODULES)} that builds")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--rows", type=int, help="use only the sample's first N rows (a quick check)")
    args = ap.parse_args()
    print(run(args.module, args.epochs, args.rows))


if __name__ == "__main__":
    main()
