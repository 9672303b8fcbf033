"""A code-competition kernel: write it, push it, submit its output.

    python -m submit.kernel write                                  # submit/kernel/: metadata + one script
    python -m submit.kernel push                                   # kaggle kernels push -p submit/kernel
    python -m submit.kernel submit --version N --message "..."     # submit that version's submission.csv

The script (submit/templates/kernel_script.py filled in) carries the project code as a base64
zip, so the kernel runs exactly the code that wrote it, with no code dataset to upload and keep
in step. It trains the default blend's members inside the kernel with internet off, reading the
competition from /kaggle/input/<slug>/, and writes /kaggle/working/submission.csv.

Hub modules: a Kaggle Models URL handle becomes a model_sources entry (mounted, and the handle
rewritten to the mounted folder); a locally built module (models/hub/<name>/) must be uploaded
as a dataset and listed in [kaggle] dataset_sources; word-vector modules are built in the kernel
from the competition's own embeddings.

Credentials are never written here: only *.py files of the project's packages and the
configuration go into the script, and the folder is checked for any secret value before it is kept.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import re
import zipfile
from pathlib import Path

from slugify import slugify  # the kaggle CLI's own slug rule (python-slugify, its dependency)

from core import kaggle
from core.artifacts import write_json, write_text
from core.cli import entry_point
from core.config import Config, load_config
from core.errors import PipelineError
from core.paths import REPO, submit_dir

CODE_FILE = "kernel.py"
METADATA = "kernel-metadata.json"
PACKAGES = ("core", "folds", "models", "ensembles", "submit", "input")
TEMPLATE = Path(__file__).parent / "templates" / "kernel_script.py"
KAGGLE_MODEL_URL = re.compile(r"^https://www\.kaggle\.com/models/([^/]+)/([^/]+)/([^/]+)/([^/]+)/(\d+)/?$")


def kernel_folder() -> Path:
    return submit_dir() / "kernel"


# ---------------------------------------------------------------- what the kernel runs
def kernel_models(cfg: Config) -> list[str]:
    """The default blend's members: all the kernel needs to train."""
    if not cfg.default_blend:
        raise PipelineError(f"{cfg.path}: [ensemble] default is not set; the kernel submits that blend")
    return list(cfg.blend(cfg.default_blend).members)


def kaggle_model_sources(cfg: Config) -> dict[str, str]:
    """Kaggle Models URL handle -> model_sources entry (owner/model/framework/variation/version)."""
    out = {}
    for handle in kernel_handles(cfg):
        match = KAGGLE_MODEL_URL.match(handle)
        if match:
            out[handle] = "/".join(match.groups())
    return out


def kernel_handles(cfg: Config) -> set[str]:
    return {handle for m in kernel_models(cfg) for handle in cfg.model(m).handles}


def needed_modules(cfg: Config) -> dict[str, str]:
    """Locally built modules the kernel's models use: name -> builder."""
    handles = kernel_handles(cfg)
    return {n: spec.builder for n, spec in cfg.modules.items() if n in handles}


def offline_problems(cfg: Config) -> list[str]:
    """Handles a kernel without internet cannot load (tfhub.dev URLs): warnings for `write`."""
    return [f"model {m}: handle {h} needs internet, which a code-competition kernel lacks; "
            f"attach its Kaggle Models copy and use that https://www.kaggle.com/models/... URL as handle"
            for m in kernel_models(cfg) for h in cfg.model(m).handles if "://" in h and not KAGGLE_MODEL_URL.match(h)]


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
            for path in sorted((REPO / package).rglob("*.py")):
                if "__pycache__" not in path.parts:
                    z.write(path, path.relative_to(REPO).as_posix())
        z.write(cfg.path, "pipeline.toml")
    return buf.getvalue()


def script(cfg: Config) -> str:
    c = cfg.competition
    settings = {"slug": c.slug, "test": c.test, "blend": cfg.default_blend, "models": kernel_models(cfg),
                "modules": needed_modules(cfg), "kaggle_models": kaggle_model_sources(cfg)}
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


# ---------------------------------------------------------------- push and submit
def push_command(folder: Path) -> list[str]:
    return ["kaggle", "kernels", "push", "-p", str(folder)]


def submit_command(slug: str, kernel_id: str, version: int, message: str) -> list[str]:
    return ["kaggle", "competitions", "submit", slug, "-k", kernel_id, "-v", str(version),
            "-f", "submission.csv", "-m", message]


def push(cfg: Config | None = None) -> str:
    folder = kernel_folder()
    validate(folder)
    return kaggle.run(push_command(folder))


def submit(version: int, message: str, cfg: Config | None = None) -> str:
    cfg = cfg or load_config()
    if version < 1:
        raise PipelineError(f"kernel version must be 1 or more, not {version}; `make kernel-push` prints it")
    if not message.strip():
        raise PipelineError("a submission needs a message: MESSAGE=\"what changed\"")
    kernel_id = validate(kernel_folder())["id"]
    return kaggle.run(submit_command(cfg.competition.slug, kernel_id, version, message))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("write", help="write submit/kernel/ (metadata and the script)")
    commands.add_parser("push", help="kaggle kernels push -p submit/kernel")
    send = commands.add_parser("submit", help="submit a pushed kernel version's submission.csv")
    send.add_argument("--version", required=True, type=_version)
    send.add_argument("--message", required=True)
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
        print("pushed; when the kernel's run finishes: make kernel-submit VERSION=<n> MESSAGE=\"...\"")
    else:
        submit(args.version, args.message)


if __name__ == "__main__":
    main()
