"""Prints configuration facts for the Makefile (one source of truth): python -m core.show models|blends|default-blend."""
import sys

from core.cli import entry_point
from core.config import load_config


@entry_point
def main(what: str) -> None:
    cfg = load_config()
    if what == "models":
        print(" ".join(m.name for m in cfg.enabled_models()))
    elif what == "blends":
        print(" ".join(b.name for b in cfg.blends.values() if b.enabled))
    elif what == "default-blend":
        print(cfg.default_blend)
    else:
        raise SystemExit(f"usage: python -m core.show models|blends|default-blend (not {what!r})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
