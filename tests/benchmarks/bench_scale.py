"""`make bench ONLY=scale`: what the competition's real size costs, stage by stage: peak memory, disk, time.

Quora Insincere Questions has 1,306,122 train and 375,806 test questions, and a Kaggle kernel gives about
13 GB of RAM, 20 GB of disk and 2 hours. A local competition of a stated fraction of that size is built from
the shared sample's real questions (`scale_competition`), run through folds, train (tfidf-lr, use-m3 and
minilm-tokens: the models that finish on 2 cores; each model's stage includes its embedding caches), a
stacking blend of them and the submission, each stage in its own process, as a user runs it. For each stage:
peak RSS (the process and everything it waited for, from wait4), disk written (the workspace's growth) and
wall time, at two fractions; full size is extrapolated linearly from the two (the slope between them also
shows whether a cost grows faster than the rows).

The texts: questions drawn with replacement from the sample (so the length distribution is the sample's);
every copy after a question's first has one word, not its first, replaced by a word drawn from the
sample's own vocabulary (another one, until the text is new): every text is distinct, as the competition's
are, with its source's word count (a one-word question gains a word). Labels follow their source (6.28% positive).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.run import Run
from models.catalogue import spec_of
from core.paths import REPO, SHARED_SAMPLE

RUN = Run.from_environment()      # a benchmark is an entry point: the workspace and configuration make names

FULL_TRAIN, FULL_TEST = 1_306_122, 375_806
KERNEL_RAM_GB, KERNEL_DISK_GB, KERNEL_MINUTES = 13, 20, 120
MODELS = ["tfidf-lr", "use-m3", "minilm-tokens"]
FRACTIONS = (1 / 40, 1 / 20)


def distinct_texts(source: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct questions drawn from `source` with replacement, each copy after the first one word changed."""
    vocabulary = np.array(sorted({w for t in source for w in t.split()}), dtype=object)
    picks = rng.integers(0, len(source), n)
    seen, out = set(), np.empty(n, dtype=object)
    for i, j in enumerate(picks):
        text, words = source[j], source[j].split()
        while text in seen:                      # each retry changes one more word: short texts run out of
            if len(words) > 1:                   # one-word variants
                words[rng.integers(1, len(words))] = vocabulary[rng.integers(len(vocabulary))]
            else:
                words = words + [vocabulary[rng.integers(len(vocabulary))]]
            text = " ".join(words)
        seen.add(text)
        out[i] = text
    return out, picks


def scale_competition(folder: Path, fraction: float, seed: int = 0) -> dict:
    """train.csv, test.csv, sample_submission.csv of `fraction` of the real size in folder/input."""
    cfg = RUN.config
    c = cfg.competition
    sample = pd.read_csv(SHARED_SAMPLE, dtype=str, keep_default_na=False)
    n_train, n_test = round(FULL_TRAIN * fraction), round(FULL_TEST * fraction)
    rng = np.random.default_rng(seed)
    texts, picks = distinct_texts(sample[c.text].to_numpy(dtype=object), n_train + n_test, rng)
    ids = np.array([f"{i:020x}" for i in range(n_train + n_test)], dtype=object)
    target = sample[c.target].to_numpy()[picks]
    inp = folder / "input"
    inp.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({c.id: ids[:n_train], c.text: texts[:n_train], c.target: target[:n_train]}).to_csv(
        inp / c.train, index=False)
    pd.DataFrame({c.id: ids[n_train:], c.text: texts[n_train:]}).to_csv(inp / c.test, index=False)
    pd.DataFrame({c.id: ids[n_train:], c.prediction: 0}).to_csv(inp / c.sample_submission, index=False)
    return {"train": n_train, "test": n_test}


def scale_config(path: Path) -> Path:
    """The catalogue's settings for the scale models, a stacking blend of them, nothing else."""
    cfg = RUN.config
    tables = {"competition": vars(cfg.competition), "folds": vars(cfg.folds)}
    models = {m: spec_of(cfg, m) for m in MODELS}
    for name in {h for m in models.values() for h in m.handles if h in cfg.modules}:
        tables[f"modules.{name}"] = {"builder": cfg.modules[name].builder, **cfg.modules[name].options}
    for m, spec in models.items():
        tables[f"models.{m}"] = {k: v for k, v in spec.as_dict().items() if k != "name" and v is not None}
    tables["blends.scale"] = {"method": "stacking", "members": MODELS}
    tables["ensemble"] = {"default": "scale"}
    path.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in t.items()) + "\n"
                            for name, t in tables.items()))
    return path


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def stages() -> list[tuple[str, list[str]]]:
    return ([("folds", ["folds.make_folds"])] + [(f"train {m}", ["models.train", "--model", m]) for m in MODELS]
            + [("ensemble", ["ensembles.blend", "--blend", "scale"]),
               ("submit", ["submit.make_submission", "--blend", "scale"])])


def measure(command: list[str], env: dict, log) -> tuple[float, float, float]:
    """(peak RSS in GB, peak anonymous RSS in GB, wall seconds) of one stage; raises when it fails.

    Read from /proc twice a second: VmHWM (the peak resident set) and RssAnon. The peak RSS counts the pages
    of memory-mapped caches that the stage read; those are the page cache's, clean and reclaimable, so the
    anonymous part is what a memory limit must hold.
    """
    start = time.time()
    process = subprocess.Popen([sys.executable, "-m", *command], cwd=REPO, env=env, stdout=log, stderr=log)
    peak = anonymous = 0
    while process.poll() is None:
        status = _status(process.pid)
        peak, anonymous = max(peak, status.get("VmHWM", 0)), max(anonymous, status.get("RssAnon", 0))
        time.sleep(0.5)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}; see {log.name}")
    return peak / 2 ** 20, anonymous / 2 ** 20, time.time() - start


def _status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status (empty once the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if v.strip().endswith("kB")}


def disk_gb(folder: Path) -> float:
    from models.caches import folder_bytes
    return folder_bytes(folder) / 2 ** 30


def run_fraction(fraction: float) -> dict:
    """Every stage at one fraction of the real size, in a fresh workspace: {stage: (rss GB, disk GB, seconds)}."""
    folder = RUN.submit_dir / "bench-scale" / f"1-{round(1 / fraction)}"
    if folder.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "hub").symlink_to(RUN.hub_dir)
    sizes = scale_competition(folder, fraction)
    env = {**os.environ, "PIPELINE_ROOT": str(folder), "CONFIG": str(scale_config(folder / "scale.toml"))}
    env.pop("FORCE", None)
    out = {"rows": sizes}
    with open(folder / "stages.log", "w") as log:
        subprocess.run([sys.executable, "-m", "models.modules.build"], cwd=REPO, env=env, stdout=log, stderr=log,
                       check=True)                  # built once, shared, not measured
        for stage, command in stages():
            before = disk_gb(folder)
            print(f"scale 1/{round(1 / fraction)}: {stage}", flush=True)
            rss, anonymous, seconds = measure(command, env, log)
            out[stage] = (rss, anonymous, disk_gb(folder) - before, seconds)
    out["workspace"] = disk_gb(folder)
    return out


def extrapolate(small: float, large: float, f_small: float, f_large: float) -> float:
    """The value at full size on the line through the two measurements."""
    slope = (large - small) / (f_large - f_small)
    return large + slope * (1 - f_large)


def section(runs: dict[float, dict]) -> str:
    (f1, a), (f2, b) = sorted(runs.items())
    n1, n2 = round(1 / f1), round(1 / f2)
    lines = ["## Scale: the competition's real size", "",
             f"{a['rows']['train']:,} / {b['rows']['train']:,} train and {a['rows']['test']:,} / "
             f"{b['rows']['test']:,} test questions (1/{n1} and 1/{n2} of the real size); full size "
             f"({FULL_TRAIN:,} + {FULL_TEST:,}) extrapolated linearly from the two. Targets: memory <= "
             f"{KERNEL_RAM_GB} GB a stage, workspace <= {KERNEL_DISK_GB} GB. RSS counts the memory-mapped caches' "
             f"pages (page cache, reclaimable); anonymous RSS is the process's own memory.", "",
             f"| stage | RSS 1/{n1} | RSS 1/{n2} | RSS full | anonymous full | disk full | time 1/{n1} | "
             f"time 1/{n2} | time full | time x2 rows |", "|---|---|---|---|---|---|---|---|---|---|"]
    total = 0.0
    for stage, _ in stages():
        (ra, aa, da, ta), (rb, ab, db, tb) = a[stage], b[stage]
        full_time = extrapolate(ta, tb, f1, f2)
        total += full_time
        lines.append(f"| {stage} | {ra:.2f} GB | {rb:.2f} GB | {extrapolate(ra, rb, f1, f2):.1f} GB | "
                     f"{extrapolate(aa, ab, f1, f2):.1f} GB | {max(extrapolate(da, db, f1, f2), 0):.1f} GB | "
                     f"{ta / 60:.1f} min | {tb / 60:.1f} min | {full_time / 60:.0f} min | {tb / max(ta, 1e-9):.2f}x |")
    lines += ["", f"Workspace: {a['workspace']:.2f} GB and {b['workspace']:.2f} GB; full size "
              f"{extrapolate(a['workspace'], b['workspace'], f1, f2):.1f} GB. The whole run at full size on these "
              f"2 cores: about {total / 60:.0f} min (the kernel's hardware: `make plan`)."]
    return "\n".join(lines)


def record_throughputs(folder: Path) -> None:
    """models/throughputs.json gains this machine's figures at the largest size (SCALE_HARDWARE names a GPU run's
    kind: T4, P100, H100)."""
    from models.plan import hardware_of
    from tests.benchmarks.measured import record
    from tests.benchmarks.run import machine
    run = RUN.with_(workspace=folder, config_path=folder / "scale.toml")
    record(run, os.environ.get("SCALE_HARDWARE") or hardware_of(run), MODELS, "stacking", machine())


def run(fractions=FRACTIONS) -> str:
    if not SHARED_SAMPLE.exists():
        return f"## Scale\n\nskipped: {SHARED_SAMPLE} not found (the shared real-data sample).\n"
    fractions = tuple(float(f) for f in os.environ.get("SCALE_FRACTIONS", "").split(",") if f) or fractions
    runs = {f: run_fraction(f) for f in fractions}
    largest = max(runs)
    record_throughputs(RUN.submit_dir / "bench-scale" / f"1-{round(1 / largest)}")
    return section(runs)
