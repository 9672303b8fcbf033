"""A full disk: each write is refused before it starts, or fails as a clear error; nothing partial, no SIGBUS."""
import os
import shutil
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest

from core import artifacts
from core.errors import PipelineError
from core.paths import REPO

Usage = namedtuple("Usage", "total used free")


def free_bytes(monkeypatch, free: int, where: str = "") -> None:
    """shutil.disk_usage reports `free` bytes for paths containing `where`, plenty elsewhere."""
    monkeypatch.setattr(artifacts.shutil, "disk_usage",
                        lambda path: Usage(1 << 40, 0, free if where in str(path) else 1 << 40))


def test_an_artifact_the_disk_cannot_hold_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    free_bytes(monkeypatch, 100)
    path = tmp_path / "model" / "oof.npy"
    with pytest.raises(PipelineError, match=rf"{path}: not enough disk space: it needs \d[\d,]* bytes and .* has 100 "
                                            rf"bytes free"):
        artifacts.write_npy(path, np.zeros(1000, np.float32))
    assert list(tmp_path.rglob("*")) == []


def test_a_disk_that_fills_during_a_write_is_an_error_naming_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full absent: no device that answers every write with ENOSPC")
    real_fdopen = os.fdopen
    monkeypatch.setattr(artifacts.os, "fdopen", lambda fd, mode: (os.close(fd), real_fdopen(
        os.open("/dev/full", os.O_WRONLY), mode))[1])      # every write of the artifact gets ENOSPC
    path = tmp_path / "metrics.json"
    with pytest.raises(PipelineError, match=rf"{path}: the disk filled up while writing it"):
        artifacts.write_json(path, {"score": 1})
    assert list(tmp_path.iterdir()) == []


def test_a_memory_mapped_cache_the_disk_cannot_hold_is_refused_before_it_is_created(tmp_path, monkeypatch):
    free_bytes(monkeypatch, 1000)
    path = tmp_path / "cache" / "emb.npy"
    with pytest.raises(PipelineError, match=rf"{path}: not enough disk space: it needs 24,096 bytes"):
        artifacts.open_memmap_preallocated(path, np.float32, (1000, 5))
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("model, cache", [("tiny-frozen", "embeddings"), ("tiny-tokens", "tokens")])
def test_a_frozen_model_whose_cache_does_not_fit_is_refused_naming_the_cache(ready, monkeypatch, capsys, model, cache):
    from models import train
    free_bytes(monkeypatch, 0, where=".cache")
    with pytest.raises(SystemExit):
        train.main(["--model", model])
    assert f"models/.cache/{cache}/" in capsys.readouterr().err
    assert not list((ready / "models" / ".cache").rglob("*.npy"))


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB filesystem (tmpfs), where the machine lets us mount one."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or 'mount failed'}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_cache_too_big_for_a_real_small_disk_is_refused_with_the_free_space(small_disk):
    path = small_disk / "emb.npy"
    with pytest.raises(PipelineError, match=rf"{path}: not enough disk space: it needs 16,004,096 bytes"):
        artifacts.open_memmap_preallocated(path, np.float32, (1_000_000, 4))
    assert list(small_disk.iterdir()) == []


FILL_MAPPED_CACHE = """
import shutil, sys
from collections import namedtuple
import numpy as np
from core import artifacts
from core.cli import entry_point
shutil.disk_usage = lambda path: namedtuple("Usage", "total used free")(1 << 40, 0, 1 << 40)  # only the disk refuses

@entry_point
def main():
    artifacts.open_memmap_preallocated(sys.argv[1], np.float32, (1_000_000, 4))[:] = 1.0

main()
"""


def test_a_mapped_cache_the_disk_runs_out_under_is_a_clear_error_not_a_sigbus(small_disk):
    path = small_disk / "emb.npy"
    done = subprocess.run([sys.executable, "-c", FILL_MAPPED_CACHE, str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, f"exit {done.returncode} (SIGBUS is -7): {done.stderr[-2000:]}"
    assert f"error: {path}: the disk filled up while writing it" in done.stderr
    assert not path.exists() and shutil.disk_usage(small_disk).used < 1 << 20
