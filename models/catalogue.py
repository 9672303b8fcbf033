"""The model catalogue: each [models.NAME] table made a typed spec of its kind (models/kinds/), checked.

    python -m models.catalogue models [NAME ...]     the enabled models, or the named ones (make train MODELS=a,b)
    python -m models.catalogue modules [NAME ...]    the [modules] those models load (make modules builds them)

A table names its kind (`kind = "partial"`); a table written before kinds had names (no kind, or "hub") gets the
one its keys describe (`route`). Its options start from the [train] table's values for the keys its kind has, and
its own keys override them; a key its kind does not have is refused, naming the table, the key and the kind's
keys. `trainable` and `features`, the keys that chose the training path before kinds, are accepted where they
agree with the kind; `output_dim` is accepted and not used (a module says its own width).
"""
from __future__ import annotations

import dataclasses
import sys

from core.cli import entry_point
from core.config import Config
from core.errors import PipelineError
from core.run import Run
from core.schema import build
from models.kinds import KINDS
from models.kinds.base import ModelSpec
from models.modules.build import BUILDERS_OF_ID_MODULES

ROUTING = ("trainable", "features")       # they chose the path before kinds had names
UNUSED = ("output_dim",)                  # once written in every table, never read


def route(table: dict, cfg: Config) -> str:
    """The kind a table without one describes: features = "tokens" -> tokens; frozen (trainable false) -> frozen;
    trainable_layers -> partial; one [modules] handle whose builder makes modules that take token ids -> full;
    any other fine-tuned module -> module."""
    if table.get("features") == "tokens":
        return "tokens"
    if not table.get("trainable", False):
        return "frozen"
    if table.get("trainable_layers") is not None:
        return "partial"
    handle = table.get("handle")
    takes_ids = isinstance(handle, str) and handle in cfg.modules \
        and cfg.modules[handle].builder in BUILDERS_OF_ID_MODULES
    return "full" if takes_ids else "module"


def spec_of(cfg: Config, name: str) -> ModelSpec:
    """The model's typed spec; PipelineError naming the table and the key of anything wrong."""
    model = cfg.model(name)
    where = f"[models.{name}]"
    kind = model.table.get("kind", "hub")
    if kind == "hub":
        kind = route(model.table, cfg)
    elif kind not in KINDS:
        raise PipelineError(f"{cfg.path}: {where} kind {kind!r} is not known; known kinds: {', '.join(KINDS)}")
    options = KINDS[kind].Options
    fields = {f.name for f in dataclasses.fields(options)}
    check_train_table(cfg)
    for key, value in _routing_of(kind).items():
        if key in model.table and model.table[key] != value:
            raise PipelineError(f"{cfg.path}: {where} {key} = {model.table[key]!r} does not fit kind = {kind!r}; "
                                f"drop {key} (the kind says it)")
    table = {k: v for k, v in model.table.items() if k not in ("kind", *ROUTING, *UNUSED)}
    if unknown := sorted(set(table) - fields):
        raise PipelineError(f"{cfg.path}: {where} has key(s) {unknown} that kind {kind!r} does not take; its keys: "
                            f"{sorted(fields)}")
    defaults = {k: v for k, v in cfg.train_defaults.items() if k in fields}
    return ModelSpec(name, kind, model.enabled, build(options, {**defaults, **table}, cfg.path, where))


def _routing_of(kind: str) -> dict:
    """The routing keys' values that lead to `kind`."""
    return {"features": "tokens" if kind == "tokens" else "sentence",
            "trainable": kind in ("partial", "full", "module")}


def check_train_table(cfg: Config) -> None:
    """[train] holds only keys some kind takes."""
    known = {f.name for kind in KINDS.values() for f in dataclasses.fields(kind.Options)}
    if unknown := sorted(set(cfg.train_defaults) - known):
        raise PipelineError(f"{cfg.path}: [train] has key(s) {unknown} that no model kind takes; known keys: "
                            f"{sorted(known)}")


def catalogue(cfg: Config) -> dict[str, ModelSpec]:
    """Every model of the configuration, typed and checked."""
    return {name: spec_of(cfg, name) for name in cfg.models}


def specs(run: Run, names: list[str] | None = None) -> list[ModelSpec]:
    """The named models (refusing a name the catalogue lacks), or every model that runs here; every table
    checked either way."""
    cfg = run.config
    everything = catalogue(cfg)
    return [everything[cfg.model(n).name] for n in names] if names else \
        [everything[m.name] for m in run.enabled_models()]


def modules_of(cfg: Config, models: list[ModelSpec]) -> list[str]:
    """The locally built modules ([modules] names, in their order) that the models load."""
    handles = {handle for m in models for handle in m.handles}
    return [name for name in cfg.modules if name in handles]


def upgrade_stamp(stamp: dict, cfg: Config) -> dict:
    """A model's stamp.json as this version writes it, so that a model trained by an earlier one is up to date
    when nothing it depends on changed: a stamp from before kinds (every option of every path in one flat spec)
    gets its kind and only that kind's options; the test set it recorded is left out (folds record theirs)."""
    stamp = {k: v for k, v in stamp.items() if k != "test_texts"}    # a test set is predicted, not trained for
    old = stamp.get("spec", {})
    if "output_dim" not in old and old.get("kind", "hub") != "hub":
        return stamp
    kind = old.get("kind") if old.get("kind") in KINDS else route(old, cfg)
    options = KINDS[kind].Options
    defaults = {f.name: f.default for f in dataclasses.fields(options)}
    kept = {k: old[k] for k in defaults if k in old and not (k in options.LATER and old[k] == _plain(defaults[k]))}
    return {**stamp, "spec": {"name": old.get("name"), "kind": kind, **kept}}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


@entry_point
def main(what: str, names: list[str]) -> None:
    run = Run.from_environment()
    cfg, models = run.config, specs(run, names)
    if what == "models":
        print(" ".join(m.name for m in models))
    elif what == "modules":
        print(" ".join(modules_of(cfg, models)))
    else:
        raise PipelineError(f"usage: python -m models.catalogue models|modules [NAME ...] (not {what!r})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2:])
