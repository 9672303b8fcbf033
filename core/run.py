"""The settings of one run, made once at its entry point and passed down: which configuration, which workspace,
whether finished work made from something else is rebuilt, which devices and precision training asks for, how
many fold jobs and where, the time budget.

    run = Run.from_environment()        # a command line (make exports its variables): the one place they are read
    run = Run.at("ws", "pipeline.toml") # the notebook API, a test, a benchmark

Make's variables, read by `from_environment` and nowhere else:
    CONFIG          the configuration file (default: pipeline.toml beside the code)
    PIPELINE_ROOT   the workspace: input/, folds/, models/, ensembles/, submit/ (default: the repository)
    FORCE=1         rebuild finished work made from something else (core.claim), keeping it in previous/
    DEVICES         cpu, cpu:N, gpu, gpu:N (models.devices); PRECISION: a Keras policy (models.precision)
    N_JOBS, BACKEND, DASK_SCHEDULER    fold jobs at once, and where they run (models.backends)
    BUDGET          minutes the training may take (the plan chooses the models that fit)
    PIPELINE_MACHINE_CACHE             where facts measured about this machine are kept (default ~/.cache/...)
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from core.errors import PipelineError
from core.paths import REPO


@dataclass(frozen=True)
class Run:
    workspace: Path
    config_path: Path
    force: bool = False
    devices: str = ""                 # "" : what TensorFlow lists
    precision: str = ""               # "" : the device's default
    n_jobs: int = 1
    backend: str = ""                 # "" : joblib's own processes
    scheduler: str = ""               # a Dask scheduler's address
    budget: float | None = None       # minutes; None: the configuration's and the machine's default
    machine_cache: Path = Path.home() / ".cache" / "tfhub-kaggle-pipeline"

    @classmethod
    def at(cls, workspace: Path | str | None = None, config: Path | str | None = None, **settings) -> "Run":
        """A run over `workspace` (default: the repository) configured by `config` (default: its pipeline.toml)."""
        root = Path(workspace or REPO).expanduser().resolve()
        return cls(root, Path(config or REPO / "pipeline.toml").expanduser().resolve(), **settings)

    @classmethod
    def from_environment(cls, environ: os._Environ | dict = os.environ) -> "Run":
        """The run make's variables describe (the module docstring lists them)."""
        def number(name: str, kind):
            text = environ.get(name, "").strip()
            try:
                return kind(text) if text else None
            except ValueError:
                raise PipelineError(f"{name}={text!r}: a number, please") from None
        budget = number("BUDGET", float)
        if budget is not None and budget <= 0:
            raise PipelineError(f"BUDGET={budget:g}: minutes above 0, please")
        return cls.at(environ.get("PIPELINE_ROOT") or None, environ.get("CONFIG") or None,
                      force=environ.get("FORCE") == "1", devices=environ.get("DEVICES", "").strip(),
                      precision=environ.get("PRECISION", "").strip(), n_jobs=number("N_JOBS", int) or 1,
                      backend=environ.get("BACKEND", "").strip(), scheduler=environ.get("DASK_SCHEDULER", "").strip(),
                      budget=budget, machine_cache=default_machine_cache(environ))

    def with_(self, **settings) -> "Run":
        return dataclasses.replace(self, **settings)

    @cached_property
    def gpu(self) -> bool:
        """Whether training here runs on a GPU: TensorFlow sees one and DEVICES does not ask for the CPU. The
        driver is looked for first, so that make's calls on a CPU machine never import TensorFlow; where a driver
        is, TensorFlow is asked, since it may lack the CUDA libraries (`make doctor` says why)."""
        gpus = Path("/proc/driver/nvidia/gpus")
        if self.devices.lower().startswith("cpu") or not (gpus.is_dir() and any(gpus.iterdir())):
            return False
        import tensorflow as tf
        return bool(tf.config.list_physical_devices("GPU"))

    def enabled_models(self) -> list:
        """The configuration's models that run on this machine (core.config.ModelTable)."""
        return self.config.enabled_models(self.gpu)

    @cached_property
    def config(self):
        """The configuration (core.config.Config), read once and checked."""
        from core.config import load_config
        return load_config(self.config_path)

    # ---- where things are: code sits in the repository, artifacts under the workspace ----------------------
    @property
    def input_dir(self) -> Path:
        return self.workspace / "input"

    @property
    def folds_file(self) -> Path:
        return self.workspace / "folds" / "folds.csv"

    def model_dir(self, name: str) -> Path:
        return self.workspace / "models" / name

    @property
    def hub_dir(self) -> Path:
        """Locally built hub modules: models/hub/<name>/ (a TF2 SavedModel each)."""
        return self.workspace / "models" / "hub"

    @property
    def cache_dir(self) -> Path:
        """Embedding caches, downloaded wheels and TF Hub's download cache."""
        return self.workspace / "models" / ".cache"

    def ensemble_dir(self, name: str) -> Path:
        return self.workspace / "ensembles" / name

    @property
    def submit_dir(self) -> Path:
        return self.workspace / "submit"


def default_machine_cache(environ) -> Path:
    """Facts about this machine measured once for every workspace (PIPELINE_MACHINE_CACHE, else ~/.cache/...)."""
    home = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(environ.get("PIPELINE_MACHINE_CACHE") or home / "tfhub-kaggle-pipeline")
