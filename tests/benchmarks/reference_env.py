"""The outside references' own environment (PyTorch, transformers, sentence-transformers), never the pipeline's.

A venv under the bench's workspace, made on first use; the references' scripts (torch_reference.py,
st_reference.py) run in it as subprocesses and import nothing of the project. Also the CPU line every bench
row records: the model and its bfloat16 flags, since speed ratios hold only for the CPU they were measured on.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# torch 2.13.0: the CPU build this machine keeps for pip; the rest as PyPI has them
REQUIREMENTS = ["torch==2.13.0", "transformers", "sentence-transformers"]


def reference_python(ws: Path) -> tuple[Path | None, str]:
    """The references' venv under `ws`: its python, or None and why it could not be made."""
    venv = ws / "torch-venv"
    py = venv / "bin" / "python"
    stamp = venv / (".installed-" + "-".join(r.split("==")[0] for r in REQUIREMENTS))   # a new list: reinstall
    if stamp.exists():
        return py, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
        done = subprocess.run([str(py), "-m", "pip", "install", "--quiet", *REQUIREMENTS, "numpy"],
                              capture_output=True, text=True, timeout=3600)
    except (subprocess.SubprocessError, OSError) as e:
        return None, f"could not make its venv ({e})"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return None, f"pip install {' '.join(REQUIREMENTS)} failed: " + " / ".join(lines[-2:])
    stamp.touch()
    return py, ""


def cpu_line() -> str:
    """"AMD EPYC 9R14, 2 cores, bf16: avx512_bf16" - what a speed ratio was measured on."""
    import os
    from models.devices import BF16_FLAGS, cpu_flags
    model, flags = cpu_flags()
    bf16 = [f for f in BF16_FLAGS if f in flags]
    return f"{model or 'unknown CPU'}, {os.cpu_count()} cores, bf16 flags: {', '.join(bf16) or 'none'}"


def has_bf16_units() -> bool:
    from models.devices import BF16_FLAGS, cpu_flags
    return any(f in cpu_flags()[1] for f in BF16_FLAGS)
