"""Build the local hub modules listed in the configuration's [modules] tables into models/hub/<name>/.

    python -m models.modules.build [--name NAME]      (make modules)

Each builder's options are a frozen dataclass, checked like every other configuration table.
A module records what it was built from (builder and options) in its stamp.json: one built
from the same is up to date, one built from other options is refused unless FORCE=1 (see
core/claim.py). A module built before stamps existed is adopted as made from the current table.
A word-vector module whose file is absent is skipped with a note, so `make modules` works before
the competition's embeddings are there.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import time
from pathlib import Path

from core.artifacts import write_json
from core.claim import STAMP, claim, write_stamp
from core.cli import entry_point
from core.config import ModuleSpec
from core.errors import PipelineError
from core.run import Run
from core.schema import build

DONE = "saved_model.pb"
BUILDERS = {  # builder name -> (module whose build(dest, options) makes it, its options dataclass)
    "use-m3": ("models.modules.use_m3", "UseM3Options"),
    "minilm": ("models.modules.minilm", "MiniLMOptions"),
    "mpnet": ("models.modules.mpnet", "MPNetOptions"),
    "pypi-glove": ("models.modules.pypi_glove", "PypiGloveOptions"),
    "word-vectors": ("models.modules.word_vectors", "WordVectorOptions"),
}
BUILDERS_OF_ID_MODULES = ("minilm", "mpnet")   # their modules take token ids (savedmodel.ID_FUNCTIONS): kind "full"


def is_built(path: Path) -> bool:
    return (path / DONE).exists()


def module_options(spec: ModuleSpec, path: Path):
    """The builder's options dataclass from the [modules.NAME] table of the configuration file `path`;
    PipelineError naming what is wrong."""
    where = f"[modules.{spec.name}]"
    if spec.builder not in BUILDERS:
        raise PipelineError(f"{path}: {where} has unknown builder {spec.builder!r}; known: {', '.join(BUILDERS)}")
    module, cls = BUILDERS[spec.builder]
    return build(getattr(importlib.import_module(module), cls), spec.options, path, where)


def stamp_options(options) -> dict:
    """The options as a module's stamp.json records them: lists as JSON has them, and options added later
    (the class's LATER) left out at their defaults, so modules built before them stay up to date."""
    defaults = {f.name: f.default for f in dataclasses.fields(options)}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()
            if not (k in getattr(options, "LATER", ()) and v == defaults[k])}


def source_missing(spec: ModuleSpec, options, workspace: Path) -> str | None:
    """Why a module cannot be built here, or None."""
    if spec.builder == "word-vectors":
        from models.modules.word_vectors import vectors_files
        if absent := [str(path) for path in vectors_files(options, workspace) if not path.is_file()]:
            return f"{', '.join(absent)} not present"
    return None


def build_module(run: Run, spec: ModuleSpec) -> Path:
    """Build one module into models/hub/<name>/ unless it is up to date."""
    options = module_options(spec, run.config_path)
    dest = run.hub_dir / spec.name
    if why := source_missing(spec, options, run.workspace):
        print(f"{dest}: skipped ({why})")
        return dest
    identity = {"builder": spec.builder, "options": stamp_options(options)}
    rebuild = f"rm -rf models/hub/{spec.name} && make modules"
    if is_built(dest) and not (dest / STAMP).exists():
        write_stamp(dest, identity)
        print(f"{dest}: built before modules were stamped; taken as built from [modules.{spec.name}] as it is "
              f"now (if it is not, rebuild it: {rebuild})")
        return dest
    if not claim(dest, identity, DONE, f"Rebuild it with `{rebuild}`", run.force):
        return dest
    start = time.time()
    print(f"{dest}: building with {spec.builder} ...", flush=True)
    importlib.import_module(BUILDERS[spec.builder][0]).build(dest, options, run)
    write_stamp(dest, identity)   # the build replaced the whole folder, the stamp claim wrote included
    write_json(dest / "build.json", {"seconds": time.time() - start})     # what the plan counts for a build
    print(f"{dest}: done in {time.time() - start:.0f} s", flush=True)
    return dest


def build_modules(run: Run, names: list[str] | None = None) -> None:
    """Build the configuration's modules (or only `names`), every table checked before minutes go into the first."""
    cfg = run.config
    unknown = [n for n in names or [] if n not in cfg.modules]
    if unknown:
        raise PipelineError(f"{cfg.path}: no [modules] entry named {unknown}; known: {', '.join(cfg.modules)}")
    specs = [cfg.modules[n] for n in names] if names else list(cfg.modules.values())
    for spec in specs:
        module_options(spec, cfg.path)
    for spec in specs:
        build_module(run, spec)


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", action="append", help="build only this module (repeatable)")
    args = parser.parse_args(argv)
    build_modules(Run.from_environment(), args.name)


if __name__ == "__main__":
    main()
