"""Writing artifacts so nothing is lost: write to a temporary name in the same folder, then rename.

A full disk is a PipelineError naming the file, never a traceback or a half-written artifact: the free
space is checked before each write, a write that still runs out (ENOSPC) removes its temporary file,
and memory-mapped caches reserve their blocks before they are mapped (a mapped page the disk cannot
hold would kill the process with SIGBUS).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from core.errors import PipelineError

FREE_SPACE = "free some space there, or set PIPELINE_ROOT to a workspace on a larger disk"


def require_space(path: Path, nbytes: int) -> None:
    """Refuse, before anything is written, a file of `nbytes` that the disk holding `path` cannot take."""
    parent = Path(path).absolute().parent
    while not parent.exists():             # the folder may not exist yet: ask the disk it will be on
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < nbytes:
        raise PipelineError(f"{path}: not enough disk space: it needs {nbytes:,} bytes and {parent} has "
                            f"{free:,} bytes free; {FREE_SPACE}")


@contextlib.contextmanager
def disk_full_as_error(path: Path, partial: Path):
    """A write that runs out of space (ENOSPC) becomes a PipelineError naming `path`; `partial` is removed."""
    try:
        yield
    except OSError as e:
        Path(partial).unlink(missing_ok=True)
        if e.errno != errno.ENOSPC:
            raise
        raise PipelineError(f"{path}: the disk filled up while writing it; nothing was kept; {FREE_SPACE}") from None


def write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    require_space(path, len(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with disk_full_as_error(path, tmp), os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_memmap_preallocated(path: Path, dtype, shape: tuple[int, ...]) -> np.memmap:
    """A new .npy file at `path` mapped for writing, its disk blocks reserved before it is mapped."""
    path = Path(path)
    data_bytes = math.prod(shape) * np.dtype(dtype).itemsize
    require_space(path, data_bytes + 4096)          # the .npy header is well under 4 KiB
    with disk_full_as_error(path, path), open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                 "fortran_order": False, "shape": tuple(shape)})
        if data_bytes:
            os.posix_fallocate(f.fileno(), 0, f.tell() + data_bytes)
    return np.load(path, mmap_mode="r+")


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: Path, fix: str = ""):
    """A JSON artifact; one that is missing, unreadable or not JSON is a PipelineError naming it and `fix`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _refused(path, "not found", fix) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _refused(path, f"unreadable or not JSON ({_short(e)})", fix) from None


def read_npy(path: Path, fix: str = "", rows: int | None = None, mmap: bool = False) -> np.ndarray:
    """A .npy artifact, checked: it parses whole (a file cut short does not) and holds `rows` rows; otherwise a
    PipelineError naming it and `fix`. mmap: memory-mapped, read only."""
    path = Path(path)
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise _refused(path, "not found", fix) from None
    except (OSError, ValueError, EOFError) as e:
        raise _refused(path, f"unreadable or cut short ({_short(e)})", fix) from None
    if rows is not None and (array.ndim == 0 or len(array) != rows):
        held = "a scalar" if array.ndim == 0 else f"{len(array):,} rows"
        raise _refused(path, f"{held} where {rows:,} were expected (made from other data, or damaged)", fix)
    return array


def _refused(path: Path, what: str, fix: str) -> PipelineError:
    return PipelineError(f"{path}{' ' if what == 'not found' else ': '}{what}" + (f"; {fix}" if fix else ""))


def _short(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__


def write_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def csv_bytes(df) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_csv(path: Path, df) -> None:
    write_bytes(path, csv_bytes(df))


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, short: identifies folds, so stages never mix predictions of different folds."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def dict_fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=_jsonable).encode()).hexdigest()[:16]


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serializable: {type(o).__name__}")
