"""Where a model's fold jobs run: joblib's own worker processes (the default) or a Dask cluster.

    make train N_JOBS=n                                   n folds at once in local processes (joblib's loky)
    make train N_JOBS=n BACKEND=dask                      a local Dask cluster of n worker processes
    make train BACKEND=dask DASK_SCHEDULER=tcp://host:port    the workers of a running Dask cluster

models.train hands a model's unfinished folds to joblib.Parallel inside `fold_backend`. Each job carries its
model's kind, which holds the run (core.run.Run: workspace, configuration, devices, precision) of the process that
submitted it, so a worker started elsewhere, or earlier, trains in the same workspace the same way; no worker
reads its own environment. A real cluster needs what a local one has for free: every worker sees the workspace
at the same path (a shared filesystem: NFS, a mounted bucket) and runs the same environment (this checkout and
`make setup CLUSTER=1`).

dask[distributed] is optional (requirements-cluster.txt, `make setup CLUSTER=1`).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from core.errors import PipelineError
from core.run import Run

BACKENDS = ("loky", "dask")
INSTALL = "install it with `make setup CLUSTER=1` (requirements-cluster.txt)"


def dask_missing() -> str | None:
    """Why the Dask backend cannot run here, or None when dask.distributed is installed."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError as e:
        return f"dask.distributed is not installed ({e.msg}); {INSTALL}"
    return None


@contextmanager
def fold_backend(run: Run) -> Iterator[str]:
    """The joblib backend the run's fold jobs run on (BACKEND), for the duration of the block; yields its name.

    loky (or unset): joblib's default, N_JOBS processes (1: in this process). dask: the running cluster at
    DASK_SCHEDULER, else a LocalCluster of N_JOBS single-threaded worker processes, closed afterwards."""
    name = (run.backend or "loky").lower()
    if name not in BACKENDS:
        raise PipelineError(f"BACKEND={run.backend}: not a fold backend; use one of {', '.join(BACKENDS)}")
    if name == "loky":
        yield name
        return
    if why := dask_missing():
        raise PipelineError(f"BACKEND=dask: {why}")
    import joblib
    with _dask_client(run.scheduler, run.n_jobs) as client, joblib.parallel_config(backend="dask", client=client):
        yield name


@contextmanager
def _dask_client(address: str, n_jobs: int):
    from dask.distributed import Client, LocalCluster
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
