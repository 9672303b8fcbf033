"""Where everything lives. Code sits in the repository; artifacts sit under the workspace.

The workspace is the repository itself unless PIPELINE_ROOT points elsewhere (tests use
a temporary folder, so they never touch a user's input/ or models/).
"""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"          # real data beside the checkout, for tests and benchmarks
SHARED_SAMPLE = SHARED_DATA / "quora" / "train_sample.csv"


def workspace() -> Path:
    return Path(os.environ.get("PIPELINE_ROOT", REPO)).resolve()


def input_dir() -> Path:
    return workspace() / "input"


def folds_file() -> Path:
    return workspace() / "folds" / "folds.csv"


def model_dir(name: str) -> Path:
    return workspace() / "models" / name


def hub_dir() -> Path:
    """Locally built hub modules: models/hub/<name>/ (a TF2 SavedModel each)."""
    return workspace() / "models" / "hub"


def cache_dir() -> Path:
    """Embedding caches and TF Hub's download cache."""
    return workspace() / "models" / ".cache"


def machine_cache_dir() -> Path:
    """Facts about this machine measured once for every workspace (PIPELINE_MACHINE_CACHE, else ~/.cache/...)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfhub-kaggle-pipeline"
    return Path(os.environ.get("PIPELINE_MACHINE_CACHE") or default)


def ensemble_dir(name: str) -> Path:
    return workspace() / "ensembles" / name


def submit_dir() -> Path:
    return workspace() / "submit"
