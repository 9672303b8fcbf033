"""The dataset of locally built modules a kernel cannot build itself (submit/kernel-dataset/): written for
`kaggle datasets create` / `version`, or uploaded through the API; then listed in [kaggle] dataset_sources.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from core import kaggle
from core.artifacts import read_json, write_json
from core.errors import PipelineError
from core.run import Run
from submit.kernel_contents import to_attach

DATASET_METADATA = "dataset-metadata.json"
DATASET_MODULES = "modules.json"             # in the dataset folder: which modules it holds


def dataset_folder(run: Run) -> Path:
    return run.submit_dir / "kernel-dataset"


def dataset(run: Run) -> Path:
    """submit/kernel-dataset/: dataset-metadata.json and each module the kernel must be given (models/hub/<name>/,
    its previous/ left out), hard-linked where the disk allows, for `kaggle datasets create` / `version`."""
    cfg = run.config
    modules = list(to_attach(cfg))
    if not modules:
        raise PipelineError(f"{cfg.path}: the kernel's models need no locally built module: no dataset to write")
    unbuilt = [m for m in modules if not (run.hub_dir / m / "saved_model.pb").exists()]
    if unbuilt:
        raise PipelineError(f"module(s) {', '.join(unbuilt)} not built; run `make modules` first")
    folder = dataset_folder(run)
    shutil.rmtree(folder, ignore_errors=True)
    for name in modules:
        shutil.copytree(run.hub_dir / name, folder / name, copy_function=_link_or_copy,
                        ignore=lambda d, names: [n for n in names if n in ("previous", ".previous.moving")])
    slug = cfg.kaggle.dataset or f"{cfg.competition.slug[:42]}-modules"
    ident = f"{kaggle.owner(cfg.kaggle)}/{slug}"
    write_json(folder / DATASET_METADATA, {"title": slug.replace("-", " ").title()[:50], "id": ident,
                                           "licenses": [{"name": "other"}],
                                           "description": "Hub modules built by the pipeline: " + ", ".join(modules)})
    write_json(folder / DATASET_MODULES, {"id": ident, "modules": modules})
    return folder


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def upload_dataset(run: Run, notes: str) -> str:
    """Create the dataset from submit/kernel-dataset/, or a new version of it when it exists; its URL."""
    folder = dataset_folder(run)
    if not (folder / DATASET_METADATA).exists():
        raise PipelineError(f"{folder / DATASET_METADATA} not found; write it first with `make kernel-dataset`")
    ident = read_json(folder / DATASET_METADATA, "write it again with `make kernel-dataset`")["id"]
    response = kaggle.call(f"kaggle datasets create -p {folder}",
                           lambda api: api.dataset_create_new(str(folder), quiet=True, dir_mode="zip"))
    if response.error and "already in use" in str(response.error):
        response = kaggle.call(f"kaggle datasets version -p {folder}",
                               lambda api: api.dataset_create_version(str(folder), notes or "modules rebuilt",
                                                                      quiet=True, dir_mode="zip"))
    if response.error:
        raise PipelineError(f"uploading dataset {ident} failed: {kaggle.redact(str(response.error))}")
    url = kaggle.redact(str(response.url or ""))
    print(f"dataset {ident}: {url}; list it in [kaggle] dataset_sources = [\"{ident}\"]", flush=True)
    return url
