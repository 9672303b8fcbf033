"""Where a model's fold jobs run: joblib's own worker processes (the default) or a Dask cluster.

    make train N_JOBS=n                                   n folds at once in local processes (joblib's loky)
    make train N_JOBS=n BACKEND=dask                      a local Dask cluster of n worker processes
    make train BACKEND=dask DASK_SCHEDULER=tcp://host:port    the workers of a running Dask cluster

models.train hands a model's unfinished folds to joblib.Parallel inside `fold_backend`, and each job is a
`FoldJob`: it carries the settings that decide where files are and how it trains (PIPELINE_ROOT, CONFIG,
DEVICES, PRECISION) from the process that submitted it, so a worker started elsewhere, or earlier, trains
in the same workspace the same way. A real cluster needs what a local one has for free: every worker sees
the workspace at the same path (a shared filesystem: NFS, a mounted bucket) and runs the same environment
(this checkout and `make setup CLUSTER=1`).

dask[distributed] is optional (requirements-cluster.txt, `make setup CLUSTER=1`).
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from core.errors import PipelineError

BACKENDS = ("loky", "dask")
CARRIED = ("PIPELINE_ROOT", "CONFIG", "DEVICES", "PRECISION")   # what a fold job takes along to its worker
INSTALL = "install it with `make setup CLUSTER=1` (requirements-cluster.txt)"


def dask_missing() -> str | None:
    """Why the Dask backend cannot run here, or None when dask.distributed is installed."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError as e:
        return f"dask.distributed is not installed ({e.msg}); {INSTALL}"
    return None


@dataclass(frozen=True, eq=False)    # hashed by identity: joblib's Dask backend keeps its jobs' functions in a set
class FoldJob:
    """A fold function with the submitting process's settings; run in a worker, it trains as it would here."""
    fn: Callable
    env: dict = field(default_factory=lambda: {k: os.environ[k] for k in CARRIED if k in os.environ})

    def __call__(self, *args, **kwargs):
        before = {k: os.environ.get(k) for k in CARRIED}
        os.environ.update(self.env)
        for k in set(CARRIED) - set(self.env):
            os.environ.pop(k, None)
        try:
            return self.fn(*args, **kwargs)
        finally:
            for k, v in before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@contextmanager
def fold_backend(backend: str | None, n_jobs: int) -> Iterator[str]:
    """The joblib backend the fold jobs run on, for the duration of the block; yields its name.

    loky (or unset): joblib's default, n_jobs processes (1: in this process). dask: the running cluster at
    DASK_SCHEDULER, else a LocalCluster of n_jobs single-threaded worker processes, closed afterwards."""
    name = (backend or "loky").strip().lower()
    if name not in BACKENDS:
        raise PipelineError(f"BACKEND={backend}: not a fold backend; use one of {', '.join(BACKENDS)}")
    if name == "loky":
        yield name
        return
    if why := dask_missing():
        raise PipelineError(f"BACKEND=dask: {why}")
    import joblib
    with _dask_client(n_jobs) as client, joblib.parallel_config(backend="dask", client=client):
        yield name


@contextmanager
def _dask_client(n_jobs: int):
    from dask.distributed import Client, LocalCluster
    address = os.environ.get("DASK_SCHEDULER", "").strip()
    if address:
        try:
            client = Client(address, timeout="30s")
        except OSError as e:
            raise PipelineError(f"DASK_SCHEDULER={address}: cannot reach the scheduler ({e}); start it "
                                f"(`dask scheduler`, then `dask worker {address}` on each machine) or unset "
                                f"DASK_SCHEDULER for a local cluster") from None
        print(f"fold jobs: Dask cluster at {address}, {sum(client.nthreads().values())} worker thread(s)",
              flush=True)
        with client:
            yield client
        return
    workers = max(1, n_jobs)
    # one thread a worker: each fold is one job, and TensorFlow inside it uses the cores it finds
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        print(f"fold jobs: local Dask cluster of {workers} worker process(es)", flush=True)
        yield client
