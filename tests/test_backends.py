"""models.backends: the fold jobs on joblib's processes or a Dask cluster, with the same artifacts."""
import json
import pickle
import shutil

import numpy as np
import pytest

from conftest import here, write_vectors
from core.errors import PipelineError
from core.run import Run
from models import backends


def test_a_fold_job_carries_the_submitters_run_whatever_the_workers_environment(monkeypatch, tmp_path):
    from models.kinds.tfidf import Tfidf
    run = Run.at(tmp_path, tmp_path / "pipeline.toml", devices="cpu:2", precision="float32")
    job = pickle.dumps(Tfidf(None, run, None, None))             # as joblib sends it to a worker
    monkeypatch.setenv("PIPELINE_ROOT", "/the/worker")           # a worker started elsewhere
    monkeypatch.setenv("DEVICES", "gpu")
    assert pickle.loads(job).run == run


def test_an_unknown_backend_or_a_missing_dask_is_refused_with_the_fix(monkeypatch):
    with pytest.raises(PipelineError, match="BACKEND=ray: not a fold backend"):
        with backends.fold_backend(Run.at(backend="ray", n_jobs=2)):
            pass
    monkeypatch.setattr(backends, "dask_missing", lambda: "dask.distributed is not installed; install it with "
                                                           "`make setup CLUSTER=1`")
    with pytest.raises(PipelineError, match=r"make setup CLUSTER=1"):
        with backends.fold_backend(Run.at(backend="dask", n_jobs=2)):
            pass


@pytest.fixture
def demo_folds(workspace):
    """A small demo competition (input.demo's generator), its folds and the tiny word-vector module."""
    from folds import make_folds
    from input import demo
    from input.local_competition import split_competition
    from core.artifacts import write_csv
    from core.config import load_config
    from models.modules.build import main as build_modules
    for name, table in split_competition(demo.demo_competition(240, 60), here().config, 0.2).items():
        write_csv(workspace / "input" / name, table)
    write_vectors(workspace / "vectors.txt")
    make_folds.main()
    build_modules([])
    return workspace


def artifacts(root, name) -> tuple:
    out = root / "models" / name
    metrics = json.loads((out / "metrics.json").read_text())
    return np.load(out / "oof.npy"), np.load(out / "test.npy"), metrics


@pytest.mark.slow
@pytest.mark.skipif(backends.dask_missing() is not None, reason=str(backends.dask_missing()))
def test_the_demos_folds_on_a_two_worker_local_dask_cluster_give_the_default_backends_artifacts(demo_folds):
    from core.config import load_config
    from models.train import train_models
    names = ["tfidf-lr", "tiny-frozen"]
    train_models(here(), names)                                     # the default: loky, in this process
    default = {n: artifacts(demo_folds, n) for n in names}
    for n in names:
        shutil.rmtree(demo_folds / "models" / n)                  # the embedding cache stays: the same inputs
    train_models(here().with_(n_jobs=2, backend="dask"), names)
    for n in names:
        oof, test, metrics = artifacts(demo_folds, n)
        np.testing.assert_allclose(oof, default[n][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(test, default[n][1], rtol=1e-4, atol=1e-5)
        assert metrics["score"]["oof"] == pytest.approx(default[n][2]["score"]["oof"], abs=1e-6)
        assert metrics["threshold"] == pytest.approx(default[n][2]["threshold"], rel=1e-3)
        assert [f["fold"] for f in metrics["folds"]] == [0, 1, 2]
