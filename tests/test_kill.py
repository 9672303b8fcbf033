"""Kill anywhere: `python -m models.train` killed (SIGKILL, its whole process group) at random moments,
then resumed until it finishes, leaves every model with complete, valid artifacts."""
import json
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest

from core.config import load_config
from core.paths import REPO
from conftest import here

KILLS, SEED = 3, 20261122
MODELS = ("tfidf-lr", "tiny-frozen", "tiny-tokens", "tiny-tuned", "tiny-mpnet-partial")   # one of every cached kind
TRAIN = [sys.executable, "-m", "models.train"] + [a for m in MODELS for a in ("--model", m)]


def start(log):
    return subprocess.Popen(TRAIN, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill_after(log, seconds: float) -> bool:
    """Run training for `seconds`, then SIGKILL its process group; False when it finished first."""
    proc = start(log)
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def resume_until_finished(log, tries: int = 3) -> None:
    for _ in range(tries):
        if start(log).wait(timeout=400) == 0:
            return
    raise AssertionError(f"training did not finish in {tries} runs; see {log.name}")


def check_model(root, name: str, k: int, n_train: int, n_test: int, log: str) -> None:
    out = root / "models" / name
    for f in range(k):                          # a finished fold is never trained again
        assert log.count(f"{name} fold {f}: F1 ") <= 1, f"{name} fold {f} finished twice"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["schema"] and [f["fold"] for f in metrics["folds"]] == list(range(k)), name
    done = [out / f"fold{f}" / "done.json" for f in range(k)]
    assert [json.loads(p.read_text())["fold"] for p in done] == list(range(k)), name
    oof, test = np.load(out / "oof.npy"), np.load(out / "test.npy")
    assert oof.shape == (n_train,) and np.isfinite(oof).all(), name
    assert test.shape == (n_test,) and np.isfinite(test).all(), name
    written = [out / "oof.npy", out / "test.npy", *done]
    assert all((out / "metrics.json").stat().st_mtime_ns >= p.stat().st_mtime_ns for p in written), name


@pytest.mark.slow                                   # about a minute: several TensorFlow start-ups
def test_training_killed_at_random_moments_resumes_to_complete_valid_artifacts(ready, tiny_mpnet):
    with open(ready / "pipeline.toml", "a") as config:        # partial fine-tuning of an MPNet-layout module too
        config.write(f'\n[models.tiny-mpnet-partial]\nhandle = "{tiny_mpnet}"\noutput_dim = 8\ntrainable = true\n'
                     f'trainable_layers = 1\ntoken_precision = "int8"\n')
    rng = random.Random(SEED)
    with open(ready / "train.log", "w") as log:
        # an uninterrupted run takes 20-40 s on 2 shared cores, a few of them imports: each try does some work
        killed = [kill_after(log, rng.uniform(3, 15)) for _ in range(KILLS)]
        resume_until_finished(log)
    assert any(killed), "every try finished before its kill: shorten the delays"
    cfg, log = here().config, (ready / "train.log").read_text()
    for spec in cfg.models.values():
        check_model(ready, spec.name, cfg.folds.k, 60, 20, log)
    check_caches(ready / "models" / ".cache")


def check_caches(cache) -> None:
    """Every embedding cache in place is whole: finite values, token offsets that end at the values' end."""
    for path in cache.rglob("[!.]*.npy"):
        values = np.load(path, mmap_mode="r")
        assert np.isfinite(values).all(), path
        if path.name.endswith(".offsets.npy"):
            assert values[-1] == len(np.load(path.with_name(path.name.replace(".offsets", ".values")))), path
