"""Talking to Kaggle about submissions, through core.kaggle (credentials checked, secrets never shown).

    python -m submit.kaggle_cli submit --blend NAME --message "..."   # send submit/NAME.csv
    python -m submit.kaggle_cli status                                # your recent submissions and scores
    python -m submit.kaggle_cli leaderboard                           # download the public leaderboard zip

A code competition (set code_competition = true in [kaggle]) refuses uploaded files: submit
through a kernel instead (`make kernel kernel-push kernel-submit`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core import kaggle
from core.cli import entry_point
from core.errors import PipelineError
from core.run import Run
from submit.make_submission import check_file

CODE_COMPETITION = ("{slug} is a code competition: Kaggle accepts only a kernel's output. Run `make kernel`, "
                    "`make kernel-push`, then `make kernel-submit VERSION=n MESSAGE=...`")


def submit_command(slug: str, file: Path, message: str) -> list[str]:
    return ["kaggle", "competitions", "submit", slug, "-f", str(file), "-m", message]


def status_command(slug: str) -> list[str]:
    return ["kaggle", "competitions", "submissions", slug]


def leaderboard_command(slug: str, folder: Path) -> list[str]:
    return ["kaggle", "competitions", "leaderboard", slug, "--download", "-p", str(folder)]


def submit(run: Run, blend: str, message: str) -> str:
    cfg = run.config
    slug = cfg.competition.slug
    if cfg.kaggle.code_competition:
        raise PipelineError(CODE_COMPETITION.format(slug=slug))
    if not message.strip():
        raise PipelineError("a submission needs a message: MESSAGE=\"what changed\"")
    path = run.submit_dir / f"{blend}.csv"
    if not path.exists():
        raise PipelineError(f"{path} not found; write it first with `make submit BLEND={blend}`")
    check_file(run, path)  # the file may have been edited since it was written
    return kaggle.run(submit_command(slug, path, message), what=f"kaggle competitions submit {slug}")


def status(run: Run) -> str:
    return kaggle.run(status_command(run.config.competition.slug))


def download_leaderboard(run: Run) -> Path:
    """The public leaderboard as a zip (a CSV with a Score column) for `make leaderboard PUBLIC_LB=...`."""
    slug = run.config.competition.slug
    folder = run.submit_dir / "public-leaderboard"
    kaggle.run(leaderboard_command(slug, folder))
    return folder / f"{slug}.zip"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("submit", help="send submit/<blend>.csv to the competition")
    send.add_argument("--blend", required=True)
    send.add_argument("--message", required=True)
    commands.add_parser("status", help="list your recent submissions and their scores")
    commands.add_parser("leaderboard", help="download the public leaderboard into submit/public-leaderboard/")
    return parser.parse_args(argv)


@entry_point
def main(argv=None) -> None:
    args = parse_args(argv)
    run = Run.from_environment()
    if args.command == "submit":
        submit(run, args.blend, args.message)
    elif args.command == "status":
        status(run)
    else:
        path = download_leaderboard(run)
        print(f"{path}: rank your models with `make leaderboard PUBLIC_LB={path}`")


if __name__ == "__main__":
    main()
