"""Prints configuration facts for the Makefile (one source of truth):

    python -m core.show models [NAME ...]     the enabled models, or the named ones (make train MODELS=a,b)
    python -m core.show modules [NAME ...]    the [modules] those models load (make modules builds them)
    python -m core.show blends | default-blend
    python -m core.show config-files          the configuration file and its base files (make's prerequisites)

A name the catalogue lacks is refused, naming the known ones.
"""
import sys

from core.cli import entry_point
from core.config import config_path, load_config
from core.tables import config_files

USAGE = "usage: python -m core.show models|modules [NAME ...] | blends | default-blend | config-files"


@entry_point
def main(what: str, names: list[str]) -> None:
    if what == "config-files":                    # before the configuration is checked: make needs them first
        print(" ".join(str(f) for f in config_files(config_path())))
        return
    cfg = load_config()
    if what in ("models", "modules"):
        models = [cfg.model(name) for name in names] or cfg.enabled_models()
        print(" ".join(m.name for m in models) if what == "models" else " ".join(cfg.modules_of(models)))
    elif what == "blends":
        print(" ".join(b.name for b in cfg.blends.values() if b.enabled))
    elif what == "default-blend":
        print(cfg.default_blend)
    else:
        raise SystemExit(f"{USAGE} (not {what!r})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2:])
