"""The kernel folder `make kernel` writes (submit/kernel/): metadata Kaggle accepts and one script.

The script (submit/templates/kernel_script.py filled in) carries the project code as a base64
zip, so the kernel runs exactly the code that wrote it, with no code dataset to upload and keep
in step. It trains the default blend's members inside the kernel with internet off, reading the
competition from /kaggle/input/<slug>/, and writes /kaggle/working/submission.csv. It first checks
the kernel's tensorflow, tf_keras, tensorflow_hub and tensorflow_text against requirements.txt.

Hub modules: a Kaggle Models URL handle becomes a model_sources entry (mounted, and the handle
rewritten to the mounted folder); word-vector modules that read only the competition's own files
(input/...) are built in the kernel; any other locally built module (models/hub/<name>/) must be
uploaded as a dataset (submit/kernel_dataset.py) and listed in [kaggle] dataset_sources, or `write`
refuses. With [kaggle] external_data = false, `write` refuses any model whose module comes from
outside the competition's data (a PyPI builder, a URL, a path, a vector file outside input/).

Credentials are never written here: only *.py files of the project's packages and the
configuration go into the script, and the folder is checked for any secret value before it is kept.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import zipfile
from pathlib import Path

from slugify import slugify  # the kaggle CLI's own slug rule (python-slugify, its dependency)

from core import kaggle
from core.artifacts import read_json, write_json, write_text
from core.config import Config
from core.errors import PipelineError
from core.paths import REPO
from core.run import Run
from core.tables import config_files, resolved_text
from submit.kernel_contents import (KAGGLE_MODEL_URL, built_in_kernel, kaggle_model_sources, kernel_models,
                                    kernel_vectors, model_handles, needed_modules, outside_files, to_attach)
from submit.kernel_dataset import DATASET_MODULES, dataset_folder
from models.plan import kernel_budget, plan_problems

CODE_FILE = "kernel.py"
METADATA = "kernel-metadata.json"
PACKAGES = ("core", "folds", "models", "ensembles", "submit", "input")
TEMPLATE = Path(__file__).parent / "templates" / "kernel_script.py"
CHECKED_PACKAGES = {"tensorflow": "tensorflow", "tf-keras": "tf_keras", "tensorflow-hub": "tensorflow_hub",
                    "tensorflow-text": "tensorflow_text"}   # requirements.txt name -> module the kernel checks


def kernel_folder(run: Run) -> Path:
    return run.submit_dir / "kernel"


# ---------------------------------------------------------------- refusals: what `write` will not send
def external_data_problems(run: Run) -> list[str]:
    """[kaggle] external_data = false: every kernel model must come from the competition's own data."""
    cfg = run.config
    if cfg.kaggle.external_data:
        return []
    found = []
    for m in kernel_models(cfg):
        for handle in model_handles(cfg, m):
            if handle in cfg.modules:
                outside = outside_files(cfg, handle)
                where = f"module {handle!r} is built from {', '.join(outside)}" if outside else ""
            elif "://" in handle:
                where = f"handle {handle} is downloaded from outside the competition"
            else:
                where = f"handle {handle!r} is a SavedModel folder from outside the competition"
            if where:
                found.append(f"model {m}: {where}")
    return [f"[kaggle] external_data = false, but {'; '.join(found)}. Use only modules built from the "
            f"competition's files (input/embeddings/...), or take the model out of the blends"] \
        if found else []


def dataset_source_problems(run: Run) -> list[str]:
    """Each module the kernel cannot build must come from an attached dataset ([kaggle] dataset_sources)."""
    cfg = run.config
    attach = to_attach(cfg)
    if not attach:
        return []
    named = ", ".join(f"{name} (models {', '.join(models)})" for name, models in attach.items())
    how = ("run `make kernel-dataset` and `make kernel-dataset-upload` (or upload submit/kernel-dataset/ with "
           "`kaggle datasets create -p submit/kernel-dataset --dir-mode zip`), then add its id to "
           "dataset_sources in [kaggle] of the configuration")
    sources = [("/".join(s.split("/")[:2])) for s in cfg.kaggle.dataset_sources]
    if not sources:
        return [f"no dataset source for the locally built module(s) {named}: the kernel cannot build them, and "
                f"[kaggle] dataset_sources is empty; {how}"]
    held = dataset_folder(run) / DATASET_MODULES
    ours = read_json(held, "write it again with `make kernel-dataset`") if held.exists() else {}
    if set(sources) == {ours.get("id")}:
        missing = [name for name in attach if name not in ours.get("modules", [])]
        if missing:
            return [f"no dataset source for the module(s) {', '.join(missing)}: the only one listed, "
                    f"{ours['id']}, holds {', '.join(ours.get('modules', [])) or 'none'}; {how}"]
    return []


# Checks `write` makes before it writes anything; each gives the problems it found (empty: none).
# `make plan`'s time check (models/plan.py) is one of them.
REFUSALS = [external_data_problems, dataset_source_problems, plan_problems]


def refusals(run: Run) -> list[str]:
    return [problem for check in REFUSALS for problem in check(run)]


def offline_problems(cfg: Config) -> list[str]:
    """Handles a kernel without internet cannot load (tfhub.dev URLs): warnings for `write`."""
    return [f"model {m}: handle {h} needs internet, which a code-competition kernel lacks; "
            f"attach its Kaggle Models copy and use that https://www.kaggle.com/models/... URL as handle"
            for m in kernel_models(cfg) for h in model_handles(cfg, m) if "://" in h and not KAGGLE_MODEL_URL.match(h)]

# ---------------------------------------------------------------- metadata
def metadata(cfg: Config, settings: kaggle.KaggleSettings) -> dict:
    slug = settings.kernel or f"{cfg.competition.slug}-pipeline"[:50]
    title = settings.title or slug.replace("-", " ").title()
    return {
        "id": f"{kaggle.owner(settings)}/{slug}",
        "title": title,
        "code_file": CODE_FILE,
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": settings.enable_gpu,
        "enable_tpu": False,
        "enable_internet": False,              # code competitions require internet off
        "competition_sources": [cfg.competition.slug],
        "dataset_sources": list(settings.dataset_sources),
        "model_sources": sorted(set(settings.model_sources) | set(kaggle_model_sources(cfg).values())),
        "kernel_sources": list(settings.kernel_sources),
    }


def metadata_problems(meta: dict, folder: Path) -> list[str]:
    """The checks `kaggle kernels push` makes (kaggle 2.2.4), plus the code-competition rules."""
    found = []
    kid = str(meta.get("id", ""))
    parts = kid.split("/")
    if len(parts) != 2 or not all(parts):
        found.append(f"id {kid!r} must be 'owner/kernel-slug'")
    elif len(parts[1]) < 5:
        found.append(f"kernel slug {parts[1]!r} must be at least five characters")
    elif slugify(str(meta.get("title", ""))) != parts[1].lower():
        found.append(f"title {meta.get('title')!r} does not slugify to {parts[1]!r}; Kaggle would rename the kernel")
    if len(str(meta.get("title", ""))) < 5:
        found.append("title must be at least five characters")
    if not meta.get("code_file") or not (folder / str(meta.get("code_file"))).is_file():
        found.append(f"code_file {meta.get('code_file')!r} not found in {folder}")
    if meta.get("language") not in ("python", "r", "rmarkdown"):
        found.append(f"language {meta.get('language')!r} must be python, r or rmarkdown")
    if meta.get("kernel_type") not in ("script", "notebook"):
        found.append(f"kernel_type {meta.get('kernel_type')!r} must be script or notebook")
    for key in ("is_private", "enable_gpu", "enable_tpu", "enable_internet"):
        if not isinstance(meta.get(key), bool):
            found.append(f"{key} must be true or false")
    if meta.get("enable_internet") is not False:
        found.append("enable_internet must be false: code competitions reject kernels with internet")
    found += _source_problems(meta)
    return found


def _source_problems(meta: dict) -> list[str]:
    found = []
    for source in meta.get("dataset_sources", []):
        p = source.split("/")
        if not (2 <= len(p) <= 3) or not p[0] or not p[1]:
            found.append(f"dataset source {source!r} must be 'owner/dataset-slug[/version]'")
    for source in meta.get("kernel_sources", []):
        p = source.split("/")
        if not (2 <= len(p) <= 3) or not p[0] or len(p[1]) < 5:
            found.append(f"kernel source {source!r} must be 'owner/kernel-slug[/version]'")
    for source in meta.get("model_sources", []):
        p = source.split("/")
        if len(p) != 5 or not all(p) or not p[4].isdigit():
            found.append(f"model source {source!r} must be 'owner/model/framework/variation/version-number'")
    if not meta.get("competition_sources"):
        found.append("competition_sources must name the competition")
    return found


def validate(folder: Path) -> dict:
    path = folder / METADATA
    if not path.exists():
        raise PipelineError(f"{path} not found; write the kernel first with `make kernel`")
    meta = json.loads(path.read_text(encoding="utf-8"))
    found = metadata_problems(meta, folder)
    if found:
        raise PipelineError(f"{path}: " + "; ".join(found))
    return meta

# ---------------------------------------------------------------- the script
def code_bundle(cfg: Config) -> bytes:
    """A zip of the project's package .py files and the configuration (as pipeline.toml, merged over its base
    file if it names one); no tests, no data."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for package in PACKAGES:
            for path in package_files(REPO / package):
                z.write(path, path.relative_to(REPO).as_posix())
        z.writestr(*config_entry(cfg))
    return buf.getvalue()


def config_entry(cfg: Config) -> tuple[zipfile.ZipInfo, str]:
    """The bundle's pipeline.toml: the configuration merged over its base files, dated like the newest of them
    (as z.write dates a file), so the same files give the same bundle."""
    newest = max(f.stat().st_mtime for f in config_files(cfg.path))
    info = zipfile.ZipInfo("pipeline.toml", date_time=time.localtime(newest)[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, resolved_text(cfg.path)


def package_files(root: Path) -> list[Path]:
    """The .py files of a package and its subpackages (folders with __init__.py): never a virtual environment
    or a workspace that lives beside the code (submit/bench-finetune/ holds both)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if (Path(folder) / d / "__init__.py").exists())
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".py")]
    return found


def required_versions() -> dict[str, str]:
    """module -> the major.minor requirements.txt pins, for the packages the kernel checks at its start."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([0-9]+\.[0-9]+)", (REPO / "requirements.txt").read_text(), re.M))
    return {module: pins[name] for name, module in CHECKED_PACKAGES.items() if name in pins}


def script(cfg: Config) -> str:
    c = cfg.competition
    settings = {"slug": c.slug, "test": c.test, "blends": [b.name for b in cfg.blends.values() if b.enabled],
                "models": kernel_models(cfg),
                "budget": kernel_budget(cfg),
                "modules": needed_modules(cfg), "build": built_in_kernel(cfg), "vectors": kernel_vectors(cfg),
                "kaggle_models": kaggle_model_sources(cfg), "requires": required_versions()}
    text = TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("__SETTINGS__", json.dumps(settings, indent=1, sort_keys=True))
    return text.replace("__CODE__", base64.b64encode(code_bundle(cfg)).decode("ascii"))


def refuse_secrets(texts: dict[str, str]) -> None:
    """Defence in depth: no credential value may end up in the kernel folder (it is uploaded)."""
    for name, text in texts.items():
        decoded = text + _decoded_code(text)
        if any(secret in decoded for secret in kaggle.secrets()):
            raise PipelineError(f"{name} would contain a Kaggle credential; not written. Remove the key from the "
                                f"project files (keep it in ~/.kaggle/kaggle.json or the environment)")


def _decoded_code(text: str) -> str:
    match = re.search(r'^CODE = "([A-Za-z0-9+/=]*)"', text, re.M)
    if not match:
        return ""
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(match.group(1)))) as z:
        return "".join(z.read(n).decode("utf-8", errors="replace") for n in z.namelist())


def write(run: Run) -> Path:
    cfg = run.config
    problems = refusals(run)
    if problems:
        raise PipelineError(f"{cfg.path}: the kernel is not written: " + "\n  ".join(problems))
    settings = cfg.kaggle
    folder = kernel_folder(run)
    body, meta = script(cfg), metadata(cfg, settings)
    meta_text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    refuse_secrets({CODE_FILE: body, METADATA: meta_text})
    write_text(folder / CODE_FILE, body)
    write_json(folder / METADATA, meta)
    validate(folder)
    for warning in offline_problems(cfg):
        print(f"warning: {warning}")
    return folder
