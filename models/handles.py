"""One function from a catalogue entry to its `hub.KerasLayer`s, whatever its handles are.

A handle is the name of a locally built module ([modules] in the configuration, built into
models/hub/<name>/), a tfhub.dev / Kaggle Models URL (downloaded once into the project's cache,
so a second run is offline), or a path to a SavedModel folder. An entry with a list of handles
feeds their embeddings, side by side, into one head.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.config import Config, ModelSpec
from core.errors import PipelineError
from core.paths import cache_dir, hub_dir, workspace


def resolve_handles(spec: ModelSpec, cfg: Config) -> list[str]:
    """Each of the model's handles as hub.KerasLayer takes it: a local folder, or a URL resolved into the cache."""
    return [_resolve(handle, spec, cfg) for handle in spec.handles]


def _resolve(handle: str, spec: ModelSpec, cfg: Config) -> str:
    if handle in cfg.modules:
        path = hub_dir() / handle
        if not (path / "saved_model.pb").exists():
            raise PipelineError(f"model {spec.name}: module {handle!r} is not built yet; run `make modules`")
        return str(path)
    if "://" in handle:
        return _download(handle, spec)
    path = Path(handle) if Path(handle).is_absolute() else workspace() / handle
    if not (path / "saved_model.pb").exists():
        raise PipelineError(f"model {spec.name}: handle {handle!r} is not a SavedModel folder "
                            f"({path / 'saved_model.pb'} not found)")
    return str(path)


def local_module(handle: str) -> Path | None:
    """The built module folder a handle names (a [modules] name or a SavedModel path), or None (a URL, or not
    built yet)."""
    if "://" in handle:
        return None
    path = Path(handle) if Path(handle).is_absolute() else workspace() / handle
    for candidate in (hub_dir() / handle, path):
        if (candidate / "saved_model.pb").exists():
            return candidate
    return None


def _download(handle: str, spec: ModelSpec) -> str:
    os.environ.setdefault("TFHUB_CACHE_DIR", str(cache_dir() / "tfhub"))
    import tensorflow_hub as hub
    try:
        return hub.resolve(handle)
    except OSError as e:  # URLError, socket errors, HTTP errors
        raise PipelineError(
            f"model {spec.name}: cannot download {handle} ({e}). This machine is offline or cannot reach "
            f"the hub. Download the module where you have internet (hub.resolve(handle), or the .tar.gz from "
            f"tfhub.dev / Kaggle Models), unpack it into a folder, and set handle = \"path/to/folder\" in "
            f"[models.{spec.name}]; or disable the entry (enabled = false)") from None


def hub_layers(spec: ModelSpec, cfg: Config, trainable: bool | None = None, compute_dtype: str = "float32") -> list:
    """hub.KerasLayer(handle, input_shape=[], dtype=tf.string, trainable=spec.trainable) for each handle; a module
    that takes a precision computes in `compute_dtype`."""
    handles = resolve_handles(spec, cfg)
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (registers SentencePiece / WordPiece ops before a module loads)
    from models.precision import call_arguments, module_dtype
    trainable = spec.trainable if trainable is None else trainable
    return [hub.KerasLayer(h, input_shape=[], dtype=tf.string, trainable=trainable, name=f"module{i or ''}",
                           arguments=call_arguments(module_dtype(h, compute_dtype)))
            for i, h in enumerate(handles)]
