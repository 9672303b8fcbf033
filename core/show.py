"""Prints configuration facts for the Makefile (one source of truth):

    python -m core.show blends
    python -m core.show files                 the competition's train, test and sample_submission file names
    python -m core.show config-files          the configuration file and its base files (make's prerequisites)

The models and the modules they load: python -m models.catalogue models|modules [NAME ...].
"""
import sys

from core.cli import entry_point
from core.run import Run
from core.tables import config_files

USAGE = "usage: python -m core.show blends | files | config-files"


@entry_point
def main(what: str) -> None:
    run = Run.from_environment()
    if what == "config-files":                    # before the configuration is checked: make needs them first
        print(" ".join(str(f) for f in config_files(run.config_path)))
        return
    cfg = run.config
    if what == "blends":
        print(" ".join(b.name for b in cfg.blends.values() if b.enabled))
    elif what == "files":
        c = cfg.competition
        print(c.train, c.test, c.sample_submission)
    else:
        raise SystemExit(f"{USAGE} (not {what!r})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
