"""From a catalogue entry's handles to loaded modules: where each module is, what it is, the one loader.

A handle is the name of a locally built module ([modules] in the configuration, built into
models/hub/<name>/), a tfhub.dev / Kaggle Models URL (downloaded once into the project's cache,
so a second run is offline), or a path to a SavedModel folder. An entry with a list of handles
feeds their embeddings, side by side, into one head.

A module is loaded once per process and distribution strategy (some ten seconds for a transformer; under a
MirroredStrategy's scope its variables are mirrored on every replica): `frozen(path)` for computing with (embedding
passes, tokenizing), and a second copy, `for_training(path)`, whose variables are put back at their pretrained
values before each fold trains them (a process that only embeds, or only trains, loads one). A folder that cannot
be loaded (half copied, damaged) is refused naming it and the fix.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import PipelineError
from core.run import Run


def resolve_handles(spec, run: Run) -> list[str]:
    """Each of the model's handles as hub.KerasLayer takes it: a local folder, or a URL resolved into the cache."""
    return [_resolve(handle, spec, run) for handle in spec.handles]


def _resolve(handle: str, spec, run: Run) -> str:
    if handle in run.config.modules:
        path = run.hub_dir / handle
        if not (path / "saved_model.pb").exists():
            raise PipelineError(f"model {spec.name}: module {handle!r} is not built yet; run `make modules`")
        return str(path)
    if "://" in handle:
        return _download(handle, spec, run.cache_dir / "tfhub")
    path = Path(handle) if Path(handle).is_absolute() else run.workspace / handle
    if not (path / "saved_model.pb").exists():
        raise PipelineError(f"model {spec.name}: handle {handle!r} is not a SavedModel folder "
                            f"({path / 'saved_model.pb'} not found)")
    return str(path)


def _download(handle: str, spec, cache: Path) -> str:
    os.environ.setdefault("TFHUB_CACHE_DIR", str(cache))    # tensorflow_hub reads its cache folder from there
    import tensorflow_hub as hub
    try:
        return hub.resolve(handle)
    except OSError as e:  # URLError, socket errors, HTTP errors
        raise PipelineError(
            f"model {spec.name}: cannot download {handle} ({e}). This machine is offline or cannot reach "
            f"the hub. Download the module where you have internet (hub.resolve(handle), or the .tar.gz from "
            f"tfhub.dev / Kaggle Models), unpack it into a folder, and set handle = \"path/to/folder\" in "
            f"[models.{spec.name}]; or disable the entry (enabled = false)") from None


def hub_layers(spec, run: Run, trainable: bool, compute_dtype: str = "float32") -> list:
    """A hub.KerasLayer(module, trainable) for each of the model's handles (strings in), over the process's loaded
    module at its pretrained values; a module that takes a precision computes in `compute_dtype`."""
    import tensorflow as tf
    import tensorflow_hub as hub
    from models.precision import call_arguments, module_dtype
    layers = []
    for i, path in enumerate(resolve_handles(spec, run)):
        module = for_training(path) if trainable else frozen(path)
        arguments = call_arguments(module_dtype(path, compute_dtype))
        layers.append(hub.KerasLayer(module, input_shape=[], dtype=tf.string, trainable=trainable,
                                     name=f"module{i or ''}", arguments=arguments))
    return layers


def module_fingerprint(module_path: str) -> str:
    """What a module is: its variables index (it holds a checksum per tensor), else its path."""
    index = Path(module_path) / "variables" / "variables.index"
    data = index.read_bytes() if index.exists() else module_path.encode()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass
class Loaded:
    module: object
    pretrained: list[np.ndarray]    # its variables' values as loaded


LOADED: dict[tuple[str, int, bool], Loaded] = {}   # (path, the strategy it was loaded under, for training) -> it


def _load(path: str, training: bool) -> Loaded:
    import tensorflow as tf
    strategy = tf.distribute.get_strategy()      # the one whose scope the caller is in (else the default)
    key = (path, id(strategy), training)
    if key not in LOADED:
        with strategy.scope():
            module = _read(path)
        LOADED[key] = Loaded(module, [v.numpy() for v in module.variables] if training else [])
    return LOADED[key]


def _read(path: str):
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (registers SentencePiece / WordPiece ops before a module loads)
    rebuild = f"it is damaged or was copied in part: rebuild it (rm -rf {path} && make modules), or copy it again"
    if not (Path(path) / "saved_model.pb").is_file() or not (Path(path) / "variables" / "variables.index").is_file():
        raise PipelineError(f"{path}: not a whole SavedModel (saved_model.pb or variables/ missing); {rebuild}")
    try:
        return hub.load(path)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise PipelineError(f"{path}: cannot be loaded ({str(e).strip().splitlines()[0][:160]}); {rebuild}") from None


def frozen(path: str):
    """The module at `path` (loaded once per process), for computing with: nothing ever trains this copy."""
    return _load(str(path), training=False).module


def for_training(path: str):
    """The training copy of the module at `path` (loaded once per process), its variables put back at their
    pretrained values: a fold before may have trained them."""
    loaded = _load(str(path), training=True)
    for variable, value in zip(loaded.module.variables, loaded.pretrained):
        variable.assign(value)
    return loaded.module
