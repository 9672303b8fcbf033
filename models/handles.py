"""One function from a catalogue entry to a `hub.KerasLayer`, whatever its handle is.

A handle is the name of a locally built module ([modules] in the configuration, built into
models/hub/<name>/), a tfhub.dev / Kaggle Models URL (downloaded once into the project's cache,
so a second run is offline), or a path to a SavedModel folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.config import Config, ModelSpec
from core.errors import PipelineError
from core.paths import cache_dir, hub_dir, workspace


def resolve_handle(spec: ModelSpec, cfg: Config) -> str:
    """The handle as hub.KerasLayer takes it: a local folder, or a URL resolved (downloaded) into the cache."""
    if spec.handle in cfg.modules:
        path = hub_dir() / spec.handle
        if not (path / "saved_model.pb").exists():
            raise PipelineError(f"model {spec.name}: module {spec.handle!r} is not built yet; run `make modules`")
        return str(path)
    if "://" in spec.handle:
        return _download(spec)
    path = Path(spec.handle) if Path(spec.handle).is_absolute() else workspace() / spec.handle
    if not (path / "saved_model.pb").exists():
        raise PipelineError(f"model {spec.name}: handle {spec.handle!r} is not a SavedModel folder "
                            f"({path / 'saved_model.pb'} not found)")
    return str(path)


def _download(spec: ModelSpec) -> str:
    os.environ.setdefault("TFHUB_CACHE_DIR", str(cache_dir() / "tfhub"))
    import tensorflow_hub as hub
    try:
        return hub.resolve(spec.handle)
    except OSError as e:  # URLError, socket errors, HTTP errors
        raise PipelineError(
            f"model {spec.name}: cannot download {spec.handle} ({e}). This machine is offline or cannot reach "
            f"the hub. Download the module where you have internet (hub.resolve(handle), or the .tar.gz from "
            f"tfhub.dev / Kaggle Models), unpack it into a folder, and set handle = \"path/to/folder\" in "
            f"[models.{spec.name}]; or disable the entry (enabled = false)") from None


def hub_layer(spec: ModelSpec, cfg: Config, trainable: bool | None = None):
    """hub.KerasLayer(handle, input_shape=[], dtype=tf.string, trainable=spec.trainable)."""
    handle = resolve_handle(spec, cfg)
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (registers SentencePiece / WordPiece ops before a module loads)
    trainable = spec.trainable if trainable is None else trainable
    return hub.KerasLayer(handle, input_shape=[], dtype=tf.string, trainable=trainable, name="module")
