"""The validated submission file: submit/<blend>.csv (or submit/<model>.csv) and its manifest.

    python -m submit.make_submission                  the blend the pipeline sends: [ensemble] default, else the best
                                                      by nested score (submit/sent.json names it, with why)
    python -m submit.make_submission --blend NAME
    python -m submit.make_submission --model NAME

What the competition's metric scores: 0/1 labels for F1 (test scores >= the threshold chosen on OOF
predictions), the probabilities for roc_auc and log_loss. Header and row order come from
sample_submission.csv (whose ids are test.csv's, in its order). The table is checked before it is written
(row count, id set, no NaN, only 0/1 labels or only probabilities); a corrupt one is refused with the reason,
so Kaggle never sees it.
The manifest submit/<name>.json records what the file was made from.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import csv_bytes, read_json, write_bytes, write_json
from core.cli import entry_point
from core.config import Config
from core.data import load_sample_submission, load_test, read_table
from core.errors import PipelineError
from core.metrics import Metric
from core.results import Result, read_result
from core.run import Run
from ensembles.blend import chosen


SENT = "sent.json"          # in submit/: which file the pipeline sends, and why (the kernel copies it)


def build_submission(run: Run, result: Result) -> pd.DataFrame:
    """sample_submission's ids (test.csv's, in its order: core.data checks), with what the metric scores."""
    cfg = run.config
    c = cfg.competition
    test = load_test(run)
    sample = load_sample_submission(run, test)
    values = cfg.metric.submitted(result.test_scores(test), result.threshold)
    table = pd.DataFrame({c.id: test.ids, c.prediction: values})
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
    found += _value_problems(table[c.prediction], c.prediction, cfg.metric)
    return found


def _value_problems(column: pd.Series, name: str, metric: Metric) -> list[str]:
    as_text = column.astype(str).str.strip()
    empty = column.isna() | as_text.isin(["", "nan", "NaN", "None"])
    if empty.any():
        return [f"{int(empty.sum()):,} NaN/empty {name} value(s), first at row {int(np.flatnonzero(empty)[0]) + 1}"]
    if metric.thresholded:
        bad = ~as_text.isin(["0", "1"])
        rule = "0 or 1"
    else:
        number = pd.to_numeric(as_text, errors="coerce")
        bad = number.isna() | (number < 0) | (number > 1)
        rule = f"a probability in [0, 1] ({metric.name} scores probabilities)"
    if bad.any():
        return [f"{name} must be {rule}, found {as_text[bad].iloc[0]!r} in {int(bad.sum()):,} row(s)"]
    return []


def require_valid(table: pd.DataFrame, sample: pd.DataFrame, cfg: Config, what: str) -> None:
    found = problems(table, sample, cfg)
    if found:
        raise PipelineError(f"{what}: refusing a corrupt submission: " + "; ".join(found))


def check_file(run: Run, path: Path) -> pd.DataFrame:
    """Re-validate a submission file on disk (before it is sent to Kaggle or scored)."""
    cfg = run.config
    c = cfg.competition
    sample = load_sample_submission(run, load_test(run))
    table = read_table(Path(path), [c.id, c.prediction])
    require_valid(table, sample, cfg, str(path))
    return table


def manifest(result: Result, table: pd.DataFrame, csv_bytes: bytes, cfg: Config) -> dict:
    values = table[cfg.competition.prediction].to_numpy(dtype=np.float64)
    return {
        "name": result.name,
        "kind": result.kind,
        result.kind: result.name,
        "method": result.metrics.get("method"),
        "metric": result.metrics["metric"],
        "threshold": result.threshold,
        "members": result.members,
        "folds_fingerprint": result.metrics.get("folds_fingerprint"),
        "test_fingerprint": result.test_fingerprint,
        "oof_score": result.oof_score,
        "nested_score": result.nested_score,
        "rows": int(len(table)),
        "mean_prediction": float(values.mean()) if len(values) else 0.0,   # F1: the positive rate
        "sha256": hashlib.sha256(csv_bytes).hexdigest(),
    }


def make(run: Run, kind: str = "blend", name: str | None = None) -> Path:
    """submit/<name>.csv and its manifest; name None: the blend the pipeline sends (ensembles.blend.chosen).
    Writing the blend it sends, submit/sent.json names it, with why."""
    cfg = run.config
    sent, why = chosen(run) if kind == "blend" else (None, None)
    name = name or sent
    result = read_result(run, kind, name)
    if result.metrics["metric"] != cfg.metric.name:
        raise PipelineError(f"{result.folder}: scored by {result.metrics['metric']}, the competition by "
                            f"{cfg.metric.name}; rerun `make train ensemble` to rescore it")
    table = build_submission(run, result)
    sample = load_sample_submission(run, load_test(run))
    path = run.submit_dir / f"{name}.csv"
    require_valid(table, sample, cfg, str(path))
    data = csv_bytes(table)
    write_json(path.with_suffix(".json"), {**manifest(result, table, data, cfg), "sent": why if name == sent else None})
    write_bytes(path, data)          # last: the CSV is make's target, so a kill between the two redoes both
    if name == sent:
        write_json(run.submit_dir / SENT, {"file": path.name, "blend": name, "why": why})
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--blend", help="a blend in ensembles/<blend>/")
    which.add_argument("--model", help="a single model in models/<model>/")
    return parser.parse_args(argv)


@entry_point
def main(argv=None) -> None:
    args = parse_args(argv)
    kind, name = ("model", args.model) if args.model else ("blend", args.blend)
    path = make(Run.from_environment(), kind, name)
    facts = read_json(path.with_suffix(".json"), f"write it again: make submit BLEND={name}")
    what = (f"{facts['mean_prediction']:.2%} positive at threshold {facts['threshold']:.6g}"
            if facts["threshold"] is not None
            else f"probabilities for {facts['metric']}, mean {facts['mean_prediction']:.4f}")
    print(f"{path}: {facts['rows']:,} rows, {what}; manifest {path.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
