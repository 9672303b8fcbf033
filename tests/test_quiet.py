"""Quiet by default: TensorFlow's C++ start-up lines stay out of the output (core/quiet.py), VERBOSE=1 shows them,
and what the pipeline or Python itself says still prints."""
import os
import re
import subprocess
import sys

from conftest import small_config, write_competition, write_vectors
from core.paths import REPO

CPP_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog", re.M)
START_UP = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            b"I0000 00:00:1796603177.420239    3233 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
            b"GPU will not be used.\n"
            b"E0000 00:00:1796603181.661878    3233 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n")


def fake_tensorflow(root, body: str = "") -> dict:
    """A `tensorflow` package that writes TensorFlow's start-up lines to file descriptor 2 as it loads, then `body`;
    the environment that imports it instead of the real one."""
    (root / "tensorflow").mkdir()
    (root / "tensorflow" / "__init__.py").write_text(f"import os\nos.write(2, {START_UP!r})\n{body}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    return {**env, "PYTHONPATH": f"{root}{os.pathsep}{REPO}"}


def python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_start_up_lines_written_while_tensorflow_loads_are_dropped(tmp_path):
    done = python("import core, tensorflow", fake_tensorflow(tmp_path))
    assert done.returncode == 0 and done.stderr == ""


def test_verbose_shows_the_start_up_lines(tmp_path):
    done = python("import core, tensorflow", {**fake_tensorflow(tmp_path), "VERBOSE": "1"})
    assert done.stderr.encode() == START_UP


def test_a_warning_printed_while_tensorflow_loads_still_shows(tmp_path):
    done = python("import core, tensorflow", fake_tensorflow(tmp_path, "import warnings; warnings.warn('real news')"))
    assert "UserWarning: real news" in done.stderr and not CPP_LINE.search(done.stderr)


def test_an_error_while_tensorflow_loads_still_shows_and_stderr_works_after(tmp_path):
    code = "import core, sys\ntry:\n    import tensorflow\nexcept ImportError as e:\n    print('after:', e, file=sys.stderr)"
    done = python(code, fake_tensorflow(tmp_path, "raise ImportError('broken install')"))
    assert done.stderr == "after: broken install\n"


def test_a_hub_models_training_through_make_prints_no_tensorflow_start_up_lines(workspace, monkeypatch):
    monkeypatch.delenv("VERBOSE", raising=False)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    (workspace / "pipeline.toml").write_text(small_config(k=2))
    write_competition(workspace)
    write_vectors(workspace / "vectors.txt")
    done = subprocess.run(["make", "--no-print-directory", "train", "MODELS=tiny-frozen"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert not CPP_LINE.search(done.stdout + done.stderr), done.stderr
    assert re.search(r"^devices: \w+", done.stdout, re.M) and "tiny-frozen: OOF F1" in done.stdout
