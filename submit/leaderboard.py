"""Every trained model and blend side by side: submit/leaderboard.md (also printed).

    python -m submit.leaderboard [--public leaderboard.csv|leaderboard.zip]

Columns, in the competition's metric ([competition] metric): OOF (threshold and every other choice made
on the same predictions: optimistic), nested CV (choices made on the other folds: honest), then the
threshold (thresholded metrics), AUC, training time and the commit of the code that made it. In a local
competition (input/solution.csv present) each model and blend is also scored on the test labels as it would
be submitted, and so is every submission file submit/*.csv. Rows are sorted by the least optimistic score a
row has: local, else nested, else OOF.

Given the public leaderboard (`python -m submit.kaggle_cli leaderboard` downloads it; any CSV
with a Score column works) each row says where that score would place.
"""
from __future__ import annotations

import argparse
import io
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import read_json, write_text
from core.cli import entry_point
from core.data import Split, load_solution, load_test, read_table, texts_fingerprint
from core.errors import PipelineError
from core.metrics import Metric
from core.records import commit_label
from core.results import Result, all_results, rebuild_hint
from core.run import Run
from ensembles.blend import chosen


@dataclass
class Row:
    kind: str
    name: str
    oof: float | None = None          # the competition's metric on OOF predictions (choices made there)
    nested: float | None = None       # its nested-CV estimate
    threshold: float | None = None
    auc: float | None = None
    seconds: float | None = None
    local: float | None = None        # on input/solution.csv
    place: str = ""
    commit: str = ""                  # the code that made it (core.records), "+dirty" with uncommitted changes
    note: str = ""

    @property
    def sober(self) -> tuple[float | None, str]:
        """The least optimistic score this row has, and which one it is."""
        for value, label in ((self.local, "local"), (self.nested, "nested"), (self.oof, "OOF")):
            if value is not None:
                return value, label
        return None, ""


@dataclass
class Board:
    metric: Metric
    rows: list[Row]
    files: list[Row] = field(default_factory=list)     # submit/*.csv scored on input/solution.csv
    public_size: int | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- scoring
def local_score(metric: Metric, submitted: np.ndarray, ids: np.ndarray, solution: Split) -> float:
    """The metric of submitted values (0/1 labels or probabilities, in `ids` order) against the solution."""
    return metric.at(solution_labels(ids, solution), submitted, 0.5 if metric.thresholded else None)


def solution_labels(ids: np.ndarray, solution: Split) -> np.ndarray:
    """The solution's labels in `ids` order, matched by id."""
    position = pd.Index(solution.ids).get_indexer(ids)
    if (position < 0).any() or len(ids) != len(solution):
        raise PipelineError(f"the ids do not match {len(solution):,} rows of input/solution.csv; "
                            f"rebuild the local competition and the predictions together")
    return solution.target[position]


def result_row(result: Result, metric: Metric, test: Split, solution: Split | None) -> Row:
    row = Row(result.kind, result.name, commit=commit_label(result.metrics))
    try:
        result.check()
        row.oof, row.nested, row.threshold = result.oof_score, result.nested_score, result.threshold
        row.auc, row.seconds = result.auc, result.seconds
        if result.metrics["metric"] != metric.name:
            raise PipelineError(f"scored by {result.metrics['metric']}, the competition now by {metric.name}; "
                                f"{rebuild_hint(result.kind, result.name)} rescores it")
        scores = result.test_scores(test)          # refused when they predict another test set
        if solution is not None:
            row.local = local_score(metric, metric.submitted(scores, row.threshold), test.ids, solution)
    except PipelineError as e:  # one broken artifact should not hide the others: say why in its row
        row.note = str(e)
    return row


def file_rows(run: Run, metric: Metric, solution: Split, test: Split) -> list[Row]:
    c, rows = run.config.competition, []
    for path in sorted(run.submit_dir.glob("*.csv")):
        row = Row("file", path.name)
        try:
            check_made_for(path, test)
            table = read_table(path, [c.id, c.prediction])
            values = pd.to_numeric(table[c.prediction], errors="raise").to_numpy()
            row.local = local_score(metric, values, table[c.id].to_numpy(dtype=object), solution)
        except (PipelineError, ValueError) as e:
            row.note = str(e)
        rows.append(row)
    return rows


def check_made_for(path: Path, test: Split) -> None:
    """A submission file whose manifest says it was made for another test set is refused."""
    manifest = path.with_suffix(".json")
    made_for = read_json(manifest).get("test_fingerprint") if manifest.exists() else None
    if made_for != texts_fingerprint(test.texts):
        raise PipelineError(f"{path}: made for another test set ({made_for or 'not recorded'} in {manifest.name}); "
                            f"`make submit` writes it again for today's test set")


# ---------------------------------------------------------------- public leaderboard
def read_public(path: Path) -> np.ndarray:
    """The Score column of a public leaderboard CSV, or of the CSV inside the downloaded zip."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: not found; download it with `python -m submit.kaggle_cli leaderboard`")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise PipelineError(f"{path}: the zip holds no CSV")
            df = pd.read_csv(io.BytesIO(z.read(names[0])))
    else:
        df = pd.read_csv(path)
    column = next((col for col in df.columns if col.strip().lower() == "score"), None)
    if column is None:
        raise PipelineError(f"{path}: no Score column (it has {list(df.columns)})")
    return pd.to_numeric(df[column], errors="coerce").dropna().to_numpy(dtype=np.float64)


def place(score: float, public: np.ndarray, metric: Metric) -> int:
    """1 + the number of public scores strictly better; ties share the place."""
    better = public > score if metric.greater_is_better else public < score
    return int(np.sum(better)) + 1


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def place_text(score: float, public: np.ndarray, metric: Metric) -> str:
    return f"would place {ordinal(place(score, public, metric))} of {len(public) + 1:,}"


# ---------------------------------------------------------------- the board
def build(run: Run, public: Path | None = None) -> Board:
    metric = run.config.metric
    solution = load_solution(run)
    test = load_test(run)
    board = Board(metric, [result_row(r, metric, test, solution) for r in all_results(run)])
    if solution is not None:
        board.files = file_rows(run, metric, solution, test)
    order = lambda row: _order(row, metric)  # noqa: E731
    board.rows.sort(key=order)
    board.files.sort(key=order)
    if public is not None:
        scores = read_public(public)
        board.public_size = len(scores)
        for row in board.rows + board.files:
            value, label = row.sober
            row.place = f"{place_text(value, scores, metric)} ({label})" if value is not None else ""
    board.notes = _notes(board, solution is not None) + sent_note(run)
    return board


def sent_note(run: Run) -> list[str]:
    """Which blend the pipeline sends and why (ensembles.blend.chosen)."""
    try:
        name, why = chosen(run)
    except PipelineError:                     # no blend finished yet
        return []
    return [f"The blend sent: {name}, {why}."]


def _order(row: Row, metric: Metric):
    value, _ = row.sober
    return (value is None, metric.ranking_key(value) if value is not None else 0.0, row.name)


def _notes(board: Board, local: bool) -> list[str]:
    label = board.metric.label
    notes = [f"OOF {label} makes every choice (threshold, blend weights) on the predictions it scores (optimistic); "
             f"nested {label} makes them on the other folds; local {label} scores input/solution.csv, never used "
             f"to choose anything."]
    if not local:
        notes.append(f"No input/solution.csv (a real competition): rows are ranked by nested {label}.")
    if board.public_size is not None:
        notes.append(f"Places compare the row's least optimistic score with {board.public_size:,} public "
                     f"leaderboard scores; the public leaderboard scores a different test set.")
    return notes


# ---------------------------------------------------------------- rendering
def header(metric: Metric) -> list[str]:
    label = metric.label
    return ["kind", "name", f"OOF {label}", f"nested {label}", f"local {label}", "threshold", "AUC", "train time",
            "public place", "commit", "note"]


def cells(row: Row) -> list[str]:
    return [row.kind, row.name, _num(row.oof), _num(row.nested), _num(row.local),
            _num(row.threshold, 6), _num(row.auc), _duration(row.seconds), row.place, row.commit, row.note]


def markdown(board: Board) -> str:
    lines = ["# Leaderboard", "", _md_table(board.rows, board.metric)]
    if board.files:
        lines += ["", "## Submission files scored on input/solution.csv", "", _md_table(board.files, board.metric)]
    lines += [""] + [f"- {n}" for n in board.notes]
    return "\n".join(lines) + "\n"


def _md_table(rows: list[Row], metric: Metric) -> str:
    if not rows:
        return "_nothing trained yet: run `make train ensemble`_"
    out = ["| " + " | ".join(header(metric)) + " |", "|" + "---|" * len(header(metric))]
    out += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells(r)) + " |" for r in rows]
    return "\n".join(out)


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def table(board: Board) -> pd.DataFrame:
    """The board's rows as a DataFrame, best first: one column per Row field (scores in the competition's
    metric, which attrs["metric"] names; None where a row has no such score)."""
    frame = pd.DataFrame([asdict(r) for r in board.rows], columns=[f.name for f in fields(Row)])
    frame.attrs["metric"] = board.metric.name
    return frame


def write(run: Run, board: Board) -> Path:
    path = run.submit_dir / "leaderboard.md"
    write_text(path, markdown(board))
    return path


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", type=Path, help="public leaderboard CSV or the zip `kaggle ... --download` gives")
    args = parser.parse_args(argv)
    run = Run.from_environment()
    board = build(run, args.public)
    path = write(run, board)
    print(markdown(board), end="")
    print(f"\n{path}")


if __name__ == "__main__":
    main()
