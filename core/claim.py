"""One rule for every stage's finished work: folds, modules, models and blends.

A stage about to (re)build an artifact folder calls `claim(folder, identity, done)`:
- finished (its `done` marker exists) from the same identity: up to date, nothing to do;
- never started, or started and not finished from the same identity: build (a run resumes);
- made from another identity: refused, since its results would be mixed with the new ones,
  unless FORCE=1, which rebuilds it.
`derived` names identity keys that are only inputs computed upstream (a blend's member
artifacts): a change there rebuilds without FORCE, since nothing finished is lost that the
inputs could not make again. The identity is kept in the folder as stamp.json.
A rebuild never destroys finished work: the folder's contents move to <folder>/previous/ first (one
generation kept; `make clean-model` is the way to delete).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from core.artifacts import read_json, write_json
from core.errors import PipelineError

STAMP = "stamp.json"
PREVIOUS = "previous"
MOVING = ".previous.moving"      # the contents on their way to previous/, while a rebuild moves them


def claim(folder: Path, identity: dict, done: str, rebuild: str, force: bool, derived: tuple[str, ...] = (),
          clear: bool = True, upgrade=None) -> bool:
    """True to build into `folder` (its stamp now says `identity`); False when it is finished from it.

    `done`: the file written last, whose presence means finished. `rebuild`: what a user can do instead of
    FORCE=1, for the refusal message ("Rebuild it with `make clean-model MODEL=x`"). Refuses (PipelineError)
    a folder made from another identity unless FORCE=1.
    A rebuild first moves the folder's contents to previous/ (`clear`; False where the folder also holds code,
    as folds/ does, and the build rewrites its one artifact whole: then only `done` and the stamp move).
    `upgrade`: a stamp written by an earlier version, in this version's form (the same identity then compares
    equal; the stamp on disk is left as it is until a rebuild writes a new one).
    """
    folder = Path(folder)
    moved = None if clear else (done, STAMP)
    if (folder / MOVING).exists():             # a rebuild was killed while keeping the previous run: finish it
        _keep_previous(folder, moved)
    stamp_file, finished = folder / STAMP, (folder / done).exists()
    try:
        old = read_json(stamp_file, f"{rebuild}, or set FORCE=1 to rebuild it") if stamp_file.exists() else None
    except PipelineError:
        if not force:
            raise
        old = {"stamp.json": "unreadable"}
    if upgrade and old is not None:
        old = upgrade(old)
    if old == identity:
        if finished:
            os.utime(folder / done)            # so make sees it up to date against a newer config
            print(f"{folder}: up to date", flush=True)
            return False
        return True                            # same identity, unfinished: resume
    if old is not None or finished:
        changed = sorted(k for k in set(identity) | set(old or {}) if (old or {}).get(k) != identity.get(k))
        kept = [k for k in changed if k not in derived]
        if not kept and old is not None:
            print(f"{folder}: its inputs ({', '.join(changed)}) changed, rebuilding", flush=True)
        elif not force:
            what = ", ".join(kept) if old is not None else "unrecorded identity (no stamp.json)"
            raise PipelineError(f"{folder} was made from a different {what}; its results would be mixed with "
                                f"new ones. {rebuild}, or set FORCE=1 to rebuild it")
        else:
            print(f"{folder}: {', '.join(changed)} changed; FORCE=1, rebuilding", flush=True)
        _keep_previous(folder, moved)
    write_stamp(folder, identity)
    return True


def write_stamp(folder: Path, identity: dict) -> None:
    """Record what `folder` is made from (claim does; a builder that replaces the whole folder does again)."""
    write_json(Path(folder) / STAMP, identity)


def _keep_previous(folder: Path, names: tuple[str, ...] | None) -> None:
    """Move the folder's contents (or only `names`) to previous/, replacing an older previous/.

    They gather in MOVING first and replace previous/ whole, so a kill part-way never mixes two runs nor
    loses the finished one: the next claim sees MOVING and finishes the move before anything else.
    """
    moving = folder / MOVING
    moving.mkdir(exist_ok=True)
    for child in folder.iterdir():
        if child.name not in (PREVIOUS, MOVING) and (names is None or child.name in names):
            child.rename(moving / child.name)
    shutil.rmtree(folder / PREVIOUS, ignore_errors=True)
    moving.rename(folder / PREVIOUS)
    print(f"{folder}: the previous run moved to {folder / PREVIOUS}/ (it replaces any older one)", flush=True)
