"""Runs the project's pipeline inside a Kaggle kernel (internet off) and writes submission.csv.

Written by `make kernel` (submit/kernel_bundle.py); edit the project, not this file. The project code
travels inside this script (CODE: a base64 zip of its .py files and pipeline.toml), so the code
that runs is exactly the code that wrote it. The competition's files are read from
/kaggle/input/<slug>/; hub modules come from attached datasets / Kaggle Models, or are built here
from the competition's embeddings. It starts by checking that the kernel's tensorflow, tf_keras,
tensorflow_hub and tensorflow_text match the pipeline's pins (requirements.txt, major.minor).

    python kernel.py [--dry-run]     (--dry-run: prepare the workspace, print the stages, run nothing)
"""
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

SETTINGS = json.loads(r'''__SETTINGS__''')
CODE = "__CODE__"

# Kaggle's folders; the environment may move them (the project's tests do).
INPUT = Path(os.environ.get("KERNEL_INPUT_ROOT", "/kaggle/input"))
WORKING = Path(os.environ.get("KERNEL_WORKING_ROOT", "/kaggle/working"))
SCRATCH = Path(os.environ.get("KERNEL_SCRATCH_ROOT", "/kaggle/temp"))   # not kept as kernel output


def installed_versions():
    """module -> the installed distribution's version (None: not installed), for the modules the pipeline pins."""
    from importlib import metadata
    dists = metadata.packages_distributions()
    found = {}
    for module in SETTINGS["requires"]:
        names = dists.get(module, [])
        names = sorted(names, key=lambda n: n.replace("_", "-").lower() != module.replace("_", "-"))
        found[module] = metadata.version(names[0]) if names else None
    return found


def version_problems(found):
    """What differs from the pipeline's pins (major.minor), given module -> version (None: missing)."""
    problems = []
    for module, wanted in SETTINGS["requires"].items():
        have = found.get(module)
        if have is None:
            problems.append(f"{module} is not installed (needs {wanted}.x)")
        elif ".".join(have.split(".")[:2]) != wanted:
            problems.append(f"{module} is {have} (needs {wanted}.x)")
    return problems


def check_versions(found=None):
    """Stop at once, with one message, when the kernel's packages are not the ones the pipeline was tested with."""
    problems = version_problems(installed_versions() if found is None else found)
    if problems:
        sys.exit("error: this kernel's packages differ from the pipeline's requirements.txt: " + "; ".join(problems)
                 + ". Pin requirements.txt to the kernel's versions and test again, or attach the pinned wheels "
                 "as a dataset and pip install them (--no-index) before this script")


def find_dirs(root, accept, depth=6):
    """Folders under root (breadth first, at most `depth` deep) for which accept(path) is true."""
    level, found = [root], []
    for _ in range(depth):
        level = sorted(p for d in level if d.is_dir() for p in d.iterdir() if p.is_dir())
        found += [p for p in level if accept(p)]
    return found


def unpack_code():
    code = SCRATCH / "pipeline"
    shutil.rmtree(code, ignore_errors=True)
    zipfile.ZipFile(io.BytesIO(base64.b64decode(CODE))).extractall(code)
    return code


def competition_dir():
    slug, test = SETTINGS["slug"], SETTINGS["test"]
    for candidate in (INPUT / slug, INPUT / "competitions" / slug, INPUT):
        if (candidate / test).exists():
            return candidate
    found = find_dirs(INPUT, lambda p: (p / test).exists(), depth=3)
    if not found:
        sys.exit(f"error: no folder under {INPUT} holds {test}: attach the competition {slug} to the kernel")
    return found[0]


def link_inputs(workspace, source, dry_run=False):
    """input/ of the workspace = symlinks to the (read-only) competition files, embeddings included.

    Where the competition ships its embeddings as embeddings.zip instead of a folder, the word-vector files
    the modules need (SETTINGS["vectors"], paths under input/) are extracted from it into scratch space.
    """
    target = workspace / "input"
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        link = target / entry.name
        if not link.exists():
            link.symlink_to(entry)
    wanted = [n for n in SETTINGS["vectors"] if n.startswith("embeddings/") and not (target / n).exists()]
    archive = source / "embeddings.zip"
    if wanted and archive.is_file():
        unzipped = SCRATCH / "embeddings"
        with zipfile.ZipFile(archive) as z:
            inside = set(z.namelist())
            for member in (n.removeprefix("embeddings/") for n in wanted):   # the archive holds glove.840B.300d/...
                if member in inside and not (unzipped / member).exists():
                    print(f"+ unzip {archive.name} {member}", flush=True)
                    dry_run or z.extract(member, unzipped)
        if not (target / "embeddings").exists():
            (target / "embeddings").symlink_to(unzipped, target_is_directory=True)


def attached_module(name):
    """An attached folder named after the module that holds a SavedModel."""
    found = find_dirs(INPUT, lambda p: p.name == name and (p / "saved_model.pb").exists())
    return found[0] if found else None


def prepare_modules(workspace):
    """Link attached modules into models/hub/; word-vector modules are built here from the competition's files."""
    hub, to_build = workspace / "models" / "hub", []
    hub.mkdir(parents=True, exist_ok=True)
    for name, builder in SETTINGS["modules"].items():
        source = attached_module(name)
        if source is not None:
            (hub / name).exists() or (hub / name).symlink_to(source)
        elif name in SETTINGS["build"]:       # a word-vector module over the competition's own embeddings
            to_build.append(name)
        else:
            sys.exit(f"error: module {name!r} ({builder}) is not attached: `make kernel-dataset` and upload it as a "
                     "Kaggle dataset, add it to dataset_sources in [kaggle] of the configuration, and run "
                     "`make kernel` again")
    return to_build


def local_model_path(source):
    """Where Kaggle mounts an attached model: /kaggle/input/<model>/<framework>/<variation>/<version>."""
    owner, model, framework, variation, version = source.split("/")
    tail = "/".join((model, framework, variation, version)).lower()
    found = find_dirs(INPUT, lambda p: p.as_posix().lower().endswith(tail))
    return found[0] if found else None


def write_config(code):
    """The project's pipeline.toml with each Kaggle Models URL replaced by its mounted folder."""
    config = code / "pipeline.toml"
    text = config.read_text(encoding="utf-8")
    for url, source in SETTINGS["kaggle_models"].items():
        path = local_model_path(source)
        if path is None:
            sys.exit(f"error: the model {source} is not attached; add it to the kernel's model_sources")
        text = text.replace(f'"{url}"', json.dumps(str(path)))
    config.write_text(text, encoding="utf-8")
    return config


def stages(to_build):
    py = [sys.executable, "-m"]
    commands = [py + ["models.modules.build", "--name", name] for name in to_build]
    commands.append(py + ["folds.make_folds"])
    commands.append(py + ["models.train"])              # the models the plan takes in the budget, on this machine
    commands += [py + ["ensembles.blend", "--blend", blend] for blend in SETTINGS["blends"]]
    commands.append(py + ["submit.make_submission"])    # the blend the pipeline sends: the best by nested score
    return commands


def main(dry_run=False):
    check_versions()
    code = unpack_code()
    workspace = SCRATCH / "workspace"
    link_inputs(workspace, competition_dir(), dry_run)
    to_build = prepare_modules(workspace)
    env = dict(os.environ, PIPELINE_ROOT=str(workspace), CONFIG=str(write_config(code)),
               BUDGET=str(SETTINGS["budget"]), PYTHONPATH=str(code), TF_USE_LEGACY_KERAS="1")
    for command in stages(to_build):
        print("+ " + " ".join(command[1:]), flush=True)
        if not dry_run:
            subprocess.run(command, cwd=code, env=env, check=True)
    if not dry_run:
        WORKING.mkdir(parents=True, exist_ok=True)
        sent = json.loads((workspace / "submit" / "sent.json").read_text())["file"]
        shutil.copyfile(workspace / "submit" / sent, WORKING / "submission.csv")
        print(f"{WORKING / 'submission.csv'} written", flush=True)


if __name__ == "__main__":
    main(dry_run="--dry-run" in sys.argv[1:])
