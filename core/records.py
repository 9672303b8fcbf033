"""What a model or blend run was made with: the `run` object of its metrics.json.

    run = {"code":     {"commit": git HEAD or null, "dirty": uncommitted changes?, "reason": why null},
           "versions": the versions of the libraries that shape results (null: not installed),
           "config":   the configuration tables it used, "devices": what it ran on,
           "started", "finished": UTC, ISO 8601}

Versions come from the installed packages' metadata (importing TensorFlow only to ask would cost seconds).
Outside a git checkout (a Kaggle kernel runs the code from a zip) the commit is null, with the reason.
"""
from __future__ import annotations

import dataclasses
import subprocess
from datetime import datetime, timezone
from importlib import metadata

from core.config import Config
from core.paths import REPO

PACKAGES = ("tensorflow", "tf-keras", "tensorflow-hub", "tensorflow-text", "scikit-learn", "numpy", "pandas")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_record(cfg: Config, tables: dict, devices, started: str) -> dict:
    """The record of a run that began at `started` and ends now. `tables`: the stage's own configuration
    ({"models.NAME": spec} or {"blends.NAME": spec}); [competition] and [folds] are added."""
    config = {"competition": dataclasses.asdict(cfg.competition), "folds": dataclasses.asdict(cfg.folds), **tables}
    return {"code": code_version(), "versions": versions(), "config": config, "devices": devices,
            "started": started, "finished": utc_now()}


def code_version() -> dict:
    """The git commit of the code, and whether the working tree differs from it."""
    try:
        head = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError) as e:
        why = (getattr(e, "stderr", None) or str(e)).strip()
        return {"commit": None, "dirty": None, "reason": f"{REPO}: not a git checkout, or git is missing ({why})"}
    return {"commit": head, "dirty": dirty}


def _git(*args: str) -> str:
    # --no-optional-locks: `git status` would otherwise take .git/index.lock to refresh the index, and a run
    # killed at that moment would leave the lock behind, blocking the user's next commit
    done = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), *args], capture_output=True, text=True,
                          timeout=30, check=True)
    return done.stdout.strip()


def versions() -> dict:
    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    return {name: version(name) for name in PACKAGES}


def commit_label(metrics: dict) -> str:
    """The commit a metrics.json was made by, short, "+dirty" when the tree had changes; "" if unknown."""
    code = (metrics.get("run") or {}).get("code") or {}
    if not code.get("commit"):
        return ""
    return code["commit"][:8] + ("+dirty" if code.get("dirty") else "")
