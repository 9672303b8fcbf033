"""The validated submission file: submit/<blend>.csv (or submit/<model>.csv) and its manifest.

    python -m submit.make_submission --blend NAME
    python -m submit.make_submission --model NAME

Labels are 0/1: test scores >= the threshold chosen on OOF predictions. Header and row order come
from sample_submission.csv. The table is checked before it is written (row count, id set, no
NaN, only 0/1); a corrupt one is refused with the reason, so Kaggle never sees it. The manifest
submit/<name>.json records what the file was made from.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import write_csv, write_json
from core.cli import entry_point
from core.config import Config, load_config
from core.data import load_sample_submission, load_test, read_table
from core.errors import PipelineError
from core.paths import submit_dir
from submit.entries import Entry, load_entry, load_train_truth, nested_f1


def build_submission(entry: Entry, cfg: Config) -> pd.DataFrame:
    """sample_submission's ids in its order, labelled from the entry's test scores."""
    c = cfg.competition
    test = load_test(cfg)
    sample = load_sample_submission(test, cfg)
    scores = entry.scores("test", len(test))
    position = pd.Index(test.ids).get_indexer(sample[c.id].to_numpy(dtype=object))
    labels = (scores[position] >= entry.threshold).astype(np.int64)
    table = pd.DataFrame({c.id: sample[c.id].to_numpy(dtype=object), c.prediction: labels})
    return table[list(sample.columns)] if set(sample.columns) == set(table.columns) else table


def problems(table: pd.DataFrame, sample: pd.DataFrame, cfg: Config) -> list[str]:
    """Everything wrong with a submission table, checked against the sample; empty when it is valid."""
    c = cfg.competition
    found = []
    if list(table.columns) != list(sample.columns):
        found.append(f"header is {list(table.columns)}, the competition expects {list(sample.columns)}")
        return found
    if len(table) != len(sample):
        found.append(f"{len(table):,} rows, the competition expects {len(sample):,}")
    ids = table[c.id].astype(str)
    if ids.duplicated().any():
        found.append(f"duplicate {c.id} values, e.g. {ids[ids.duplicated()].iloc[0]!r}")
    missing, extra = set(sample[c.id].astype(str)) - set(ids), set(ids) - set(sample[c.id].astype(str))
    if missing or extra:
        found.append(f"{len(missing):,} test ids missing, {len(extra):,} unknown ids")
    found += _label_problems(table[c.prediction], c.prediction)
    return found


def _label_problems(column: pd.Series, name: str) -> list[str]:
    as_text = column.astype(str).str.strip()
    empty = column.isna() | as_text.isin(["", "nan", "NaN", "None"])
    if empty.any():
        return [f"{int(empty.sum()):,} NaN/empty {name} value(s), first at row {int(np.flatnonzero(empty)[0]) + 1}"]
    bad = ~as_text.isin(["0", "1"])
    if bad.any():
        return [f"{name} must be 0 or 1, found {as_text[bad].iloc[0]!r} in {int(bad.sum()):,} row(s)"]
    return []


def require_valid(table: pd.DataFrame, sample: pd.DataFrame, cfg: Config, what: str) -> None:
    found = problems(table, sample, cfg)
    if found:
        raise PipelineError(f"{what}: refusing a corrupt submission: " + "; ".join(found))


def check_file(path: Path, cfg: Config | None = None) -> pd.DataFrame:
    """Re-validate a submission file on disk (before it is sent to Kaggle or scored)."""
    cfg = cfg or load_config()
    c = cfg.competition
    sample = load_sample_submission(load_test(cfg), cfg)
    table = read_table(Path(path), [c.id, c.prediction])
    require_valid(table, sample, cfg, str(path))
    return table


def manifest(entry: Entry, table: pd.DataFrame, csv_bytes: bytes, cfg: Config) -> dict:
    labels = table[cfg.competition.prediction].to_numpy()
    return {
        "name": entry.name,
        "kind": entry.kind,
        "blend" if entry.kind == "blend" else "model": entry.name,
        "method": entry.metrics.get("method"),
        "threshold": entry.threshold,
        "members": entry.members,
        "folds_fingerprint": entry.metrics.get("folds_fingerprint"),
        "oof_f1": entry.oof_f1,
        "nested_f1": nested_f1(entry, load_train_truth()),
        "rows": int(len(table)),
        "positives": int(labels.sum()),
        "positive_rate": float(labels.mean()) if len(labels) else 0.0,
        "sha256": hashlib.sha256(csv_bytes).hexdigest(),
    }


def make(kind: str, name: str, cfg: Config | None = None) -> Path:
    cfg = cfg or load_config()
    entry = load_entry(kind, name)
    table = build_submission(entry, cfg)
    sample = load_sample_submission(load_test(cfg), cfg)
    path = submit_dir() / f"{name}.csv"
    require_valid(table, sample, cfg, str(path))
    write_csv(path, table)
    write_json(path.with_suffix(".json"), manifest(entry, table, path.read_bytes(), cfg))
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--blend", help="a blend in ensembles/<blend>/")
    which.add_argument("--model", help="a single model in models/<model>/")
    return parser.parse_args(argv)


@entry_point
def main(argv=None) -> None:
    args = parse_args(argv)
    kind, name = ("blend", args.blend) if args.blend else ("model", args.model)
    path = make(kind, name)
    info = load_entry(kind, name)
    labels = pd.read_csv(path)[load_config().competition.prediction]
    print(f"{path}: {len(labels):,} rows, {int(labels.sum()):,} positive ({labels.mean():.2%}) "
          f"at threshold {info.threshold:.6g}; manifest {path.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
