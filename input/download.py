"""`make data`: download the competition into input/ with the kaggle CLI, then unzip it.

    python -m input.download

Needs Kaggle credentials, network, and the competition's rules accepted on its Kaggle page.
Zips inside the download (Quora's embeddings.zip) are unpacked into a folder of the same name
(input/embeddings/...), where pipeline.toml's word-vector modules look for them. The zips are
kept, so the kaggle CLI skips the download next time.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from core import kaggle
from core.cli import entry_point
from core.config import Config
from core.errors import PipelineError
from core.run import Run


def download_command(slug: str, folder: Path) -> list[str]:
    return ["kaggle", "competitions", "download", "-c", slug, "-p", str(folder)]


def unzip(archive: Path, into: Path) -> list[Path]:
    """Extract every member, refusing any that would land outside `into`; returns the files written."""
    into = into.resolve()
    written = []
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.infolist():
                target = (into / member.filename).resolve()
                if into != target and into not in target.parents:
                    raise PipelineError(f"{archive}: member {member.filename!r} points outside {into}; not extracted")
                z.extract(member, into)
                if not member.is_dir():
                    written.append(target)
    except zipfile.BadZipFile:
        raise PipelineError(f"{archive}: not a valid zip (an interrupted download?); delete it and run "
                            f"`make data` again") from None
    return written


def unzip_all(archive: Path, folder: Path) -> list[Path]:
    """The download, then any zip it held (into a folder named after that zip)."""
    files = unzip(archive, folder)
    for inner in [f for f in files if f.suffix == ".zip"]:
        files += unzip(inner, inner.with_suffix(""))
    return files


def check_downloaded(folder: Path, cfg: Config) -> None:
    c = cfg.competition
    absent = [name for name in (c.train, c.test, c.sample_submission) if not (folder / name).exists()]
    if absent:
        raise PipelineError(f"{folder}: the download lacks {absent}; check the [competition] file names "
                            f"in pipeline.toml against the competition's data page")


def download(run: Run) -> Path:
    cfg = run.config
    slug, folder = cfg.competition.slug, run.input_dir
    folder.mkdir(parents=True, exist_ok=True)
    kaggle.run(download_command(slug, folder), offline_hint=kaggle.OFFLINE_ALTERNATIVES)
    archive = folder / f"{slug}.zip"
    if archive.exists():
        unzip_all(archive, folder)
    check_downloaded(folder, cfg)
    return folder


@entry_point
def main() -> None:
    folder = download(Run.from_environment())
    print(f"{folder}: competition files ready; next: make folds")


if __name__ == "__main__":
    main()
