"""Precision in one place: what a Keras policy computes in, whether a module can compute in it, how a module is
asked to, how caches of computed states are keyed by it, and that one model's folds share it.

models.devices decides the policy (from the device and the CPU's units); everything else asks here.
  policy         a Keras mixed-precision policy, PRECISIONS
  compute dtype  what the project's modules run their matrix products in: bfloat16 under mixed_bfloat16, else
                 float32 (GPUs' float16 stays inside Keras: the modules compute float32 there)
A module built with `compute_dtypes` (models.modules.savedmodel.COMPUTE_DTYPES) takes the compute dtype at call
time; one without (tfhub.dev modules, word-vector modules) computes in float32 whatever is asked.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import PipelineError

PRECISIONS = ("mixed_float16", "mixed_bfloat16", "float32")   # the Keras policies a run may use


def compute_dtype(policy: str) -> str:
    """The modules' compute dtype under a Keras policy."""
    return "bfloat16" if policy == "mixed_bfloat16" else "float32"


def module_dtype(module, wanted: str) -> str:
    """What `module` computes in when asked for `wanted`: a saved module folder (a path) or a loaded module;
    float32 where it takes no choice."""
    from models.modules.savedmodel import compute_dtypes_of, takes_compute_dtype
    if wanted == "float32":
        return wanted
    takes = takes_compute_dtype(module) if isinstance(module, (str, Path)) else wanted in compute_dtypes_of(module)
    return wanted if takes else "float32"


def call_arguments(dtype: str) -> dict:
    """The keyword a module function takes for a compute dtype; none for float32, every module's own."""
    return {} if dtype == "float32" else {"compute_dtype": dtype}


def cache_key(dtype: str) -> dict:
    """The part of a cache's key that says what computed it: nothing for float32 (the caches made before
    precision existed), else the compute dtype; a float32 and a bfloat16 run never read each other's files."""
    return call_arguments(dtype)


def check_one_precision(finished: dict[int, str], precision: str, where: Path, name: str) -> None:
    """A resumed model's folds all train in one precision (`finished`: fold -> the precision it trained in);
    refuse to mix, naming how to go on either way."""
    seen = set(finished.values())
    if not seen or seen == {precision}:
        return
    resume = f"Resume in the same precision (PRECISION={min(seen)} make train), or" if len(seen) == 1 else "Then"
    raise PipelineError(f"{where}: folds {sorted(finished)} were trained in {', '.join(sorted(seen))}, and this run "
                        f"would train the rest in {precision}. {resume} retrain the model "
                        f"(make clean-model MODEL={name})")
