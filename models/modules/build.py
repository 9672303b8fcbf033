"""Build the local hub modules listed in the configuration's [modules] tables into models/hub/<name>/.

    python -m models.modules.build [--name NAME]      (make modules)

A module already built is skipped (FORCE=1 rebuilds); a word-vector module whose file is absent
is skipped with a note, so `make modules` works before the competition's embeddings are there.
"""
from __future__ import annotations

import argparse
import importlib
import os
import time
from pathlib import Path

from core.cli import entry_point
from core.config import ModuleSpec, load_config
from core.errors import PipelineError
from core.paths import hub_dir, workspace

BUILDERS = {  # builder name -> module whose build(dest, options) makes it
    "use-m3": "models.modules.use_m3",
    "minilm": "models.modules.minilm",
    "pypi-glove": "models.modules.pypi_glove",
    "word-vectors": "models.modules.word_vectors",
}


def is_built(path: Path) -> bool:
    return (path / "saved_model.pb").exists()


def source_missing(spec: ModuleSpec) -> str | None:
    """Why a module cannot be built here, or None."""
    if spec.builder == "word-vectors":
        vectors = Path(spec.options.get("vectors", ""))
        vectors = vectors if vectors.is_absolute() else workspace() / vectors
        if not vectors.is_file():
            return f"{vectors} not present"
    return None


def build_module(spec: ModuleSpec) -> Path:
    if spec.builder not in BUILDERS:
        raise PipelineError(f"[modules.{spec.name}]: unknown builder {spec.builder!r}; known: {', '.join(BUILDERS)}")
    dest = hub_dir() / spec.name
    if is_built(dest) and os.environ.get("FORCE") != "1":
        print(f"{dest}: built")
        return dest
    if why := source_missing(spec):
        print(f"{dest}: skipped ({why})")
        return dest
    start = time.time()
    print(f"{dest}: building with {spec.builder} ...", flush=True)
    importlib.import_module(BUILDERS[spec.builder]).build(dest, spec.options)
    print(f"{dest}: done in {time.time() - start:.0f} s", flush=True)
    return dest


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", action="append", help="build only this module (repeatable)")
    args = parser.parse_args(argv)
    cfg = load_config()
    unknown = [n for n in args.name or [] if n not in cfg.modules]
    if unknown:
        raise PipelineError(f"{cfg.path}: no [modules] entry named {unknown}; known: {', '.join(cfg.modules)}")
    specs = [cfg.modules[n] for n in args.name] if args.name else list(cfg.modules.values())
    for spec in specs:
        build_module(spec)


if __name__ == "__main__":
    main()
