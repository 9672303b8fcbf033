"""Turn any labelled CSV into a local competition in input/, shaped like Kaggle's:

    python -m input.local_competition --source labelled.csv [--test-fraction 0.2]

train.csv (with labels), test.csv (no labels), sample_submission.csv, and solution.csv (the test
labels, named as Kaggle names its hidden solution file) for the offline leaderboard. The split is
stratified and deterministic for a given seed ([folds] seed).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from core.artifacts import write_csv
from core.cli import entry_point
from core.config import Config
from core.data import labelled, read_table
from core.errors import PipelineError
from core.run import Run


def split_competition(source: pd.DataFrame, cfg: Config, test_fraction: float) -> dict[str, pd.DataFrame]:
    """The competition's four files from labelled rows: the id, text and extra columns the source has (in its
    order), the target last in train.csv."""
    c = cfg.competition
    kept = {c.id, *c.text_columns, *c.extra_columns}
    features = [col for col in source.columns if col in kept]
    train, test = train_test_split(source, test_size=test_fraction, stratify=source[c.target],
                                   random_state=cfg.folds.seed)
    return {
        c.train: train[[*features, c.target]],
        c.test: test[features],
        c.sample_submission: test[[c.id]].assign(**{c.prediction: 0}),
        c.solution: test[[c.id, c.target]],
    }


def refuse_to_overwrite(folder: Path, names: list[str]) -> None:
    present = [n for n in names if (folder / n).exists()]
    if present:
        raise PipelineError(f"{folder} already holds {present}; move them away first "
                            f"(a competition is never overwritten)")


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True,
                        help="a labelled CSV with the id, text and target columns")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    if not str(args.source):
        raise PipelineError("give the labelled file: make local-competition SOURCE=file.csv")
    if not 0 < args.test_fraction < 1:
        raise PipelineError(f"TEST_FRACTION must be between 0 and 1, not {args.test_fraction}")
    run = Run.from_environment()
    cfg = run.config
    c = cfg.competition
    source = read_table(args.source.resolve(), [c.id, *c.text_columns, c.target])
    labelled(source, cfg, args.source.name)  # validate first, so errors name the source's own rows
    tables = split_competition(source, cfg, args.test_fraction)
    refuse_to_overwrite(run.input_dir, list(tables))
    for name, table in tables.items():
        write_csv(run.input_dir / name, table)
    print(f"{run.input_dir}: local competition from {args.source}: "
          f"{len(tables[c.train]):,} train rows, {len(tables[c.test]):,} test rows "
          "(solution.csv holds the test labels)")


if __name__ == "__main__":
    main()
