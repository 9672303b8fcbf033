"""TensorFlow without its C++ start-up lines, unless VERBOSE=1 (core/__init__.py calls `quiet_tensorflow` first).

On a CPU machine TensorFlow's C++ side prints, for every process, lines such as "Could not find cuda
drivers on your machine" and "E0000 ... failed call to cuInit: ... CUDA error", which read as failures;
the pipeline's own device line ("devices: CPU, float32") says what runs where. TF_CPP_MIN_LOG_LEVEL=3
silences what the C++ side logs once it runs, but TensorFlow 2.19+ logs some lines while its libraries
load, before that setting is applied (tensorflow/tensorflow#100442). So the first `import tensorflow`
runs with the process's stderr (file descriptor 2) captured, and what it wrote comes back without those
log lines: a Python warning or error printed during the import still shows.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from contextlib import contextmanager

CPP_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "                  # absl's: I0000 00:00:1796603.4 31 f.cc:31]
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\] )")        # TensorFlow's older one
# Fatal lines (F...) are kept: they say why the process is about to end.


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ log lines out of the output (an explicit TF_CPP_MIN_LOG_LEVEL is kept)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def without_cpp_log_lines(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not CPP_LOG_LINE.match(line))


@contextmanager
def stderr_without_cpp_log_lines():
    """Capture file descriptor 2 (where C++ writes) for the block; then write what came without C++ log lines."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):   # no stderr to capture (closed, or None)
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sys.stderr.write(without_cpp_log_lines(captured.read().decode("utf-8", errors="replace")))
            sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds tensorflow as the other finders do, then has its first import run with stderr filtered."""
    done = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self.done:
            return None
        self.done = True                        # before asking the other finders, which ask this one too
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader    # later readers see TensorFlow's own loader
        with stderr_without_cpp_log_lines():
            self.loader.exec_module(module)
