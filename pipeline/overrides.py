"""A configuration with overrides: pipeline.toml's tables, a dict merged over them, written as one TOML file.

The stages read their configuration from one file (core.config.load_config, CONFIG=path), so overrides
are not a second source of truth beside it: they make a new file, which every stage then reads as it
reads pipeline.toml. Its name is its content's hash, so the same overrides always give the same file.
Merging and writing tables is core.tables' (a configuration's base file merges the same way).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from core.errors import PipelineError
from core.tables import dumps, merge, read_tables


def write_merged(base: Path, overrides: dict, folder: Path) -> Path:
    """The base configuration file (with its own base files) and overrides merged in, written as
    folder/config-<hash>.toml."""
    raw = read_tables(Path(base))
    if not isinstance(overrides, dict):
        raise PipelineError(f"overrides must be a dict of tables, like {{'folds': {{'k': 3}}}}, not {overrides!r}")
    text = f"# {Path(base).resolve()} with overrides from the notebook API (pipeline.load)\n" + \
        dumps(merge(raw, overrides))
    path = folder / f"config-{hashlib.sha256(text.encode()).hexdigest()[:12]}.toml"
    if not path.exists():
        from core.artifacts import write_text
        write_text(path, text)
    return path
