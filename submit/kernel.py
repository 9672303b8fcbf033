"""A code-competition kernel: write it, push it, follow its run, fetch its output, submit it.

    python -m submit.kernel write                                  # submit/kernel/: metadata + one script
    python -m submit.kernel push                                   # push it (a new version), via the kaggle API
    python -m submit.kernel status [--no-wait]                     # poll the run until complete or failed
    python -m submit.kernel output                                 # download its output: submit/kernel-output/
    python -m submit.kernel submit --version N --message "..."     # submit that version's submission.csv
    python -m submit.kernel dataset [--upload] [--notes "..."]     # submit/kernel-dataset/: the modules to attach

This file is the command line only; each job has its own file: what the kernel runs
(submit/kernel_contents.py), the folder and its script (submit/kernel_bundle.py), the loop through
Kaggle's API (submit/kernel_api.py), the modules' dataset (submit/kernel_dataset.py).
"""
from __future__ import annotations

import argparse
import json

from core.artifacts import read_json
from core.cli import entry_point
from core.run import Run
from submit.kernel_api import output, push, status, submit
from submit.kernel_bundle import METADATA, write
from submit.kernel_dataset import DATASET_MODULES, dataset, upload_dataset


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
    run = Run.from_environment()
    if args.command == "write":
        folder = write(run)
        meta = json.loads((folder / METADATA).read_text(encoding="utf-8"))
        print(f"{folder}: kernel {meta['id']} ready; next: make kernel-push")
    elif args.command == "push":
        push(run)
        print("next: make kernel-status (polls until the run is complete or has failed)")
    elif args.command == "status":
        status(run, wait=not args.no_wait, poll_seconds=args.poll)
    elif args.command == "output":
        output(run)
    elif args.command == "dataset":
        if args.upload:
            upload_dataset(run, args.notes)
        else:
            folder = dataset(run)
            held = read_json(folder / DATASET_MODULES, "write it again with `make kernel-dataset`")["modules"]
            print(f"{folder}: {', '.join(held)}; next: make kernel-dataset-upload")
    else:
        submit(run, args.version, args.message)


if __name__ == "__main__":
    main()
