"""Every trained model and blend side by side: submit/leaderboard.md (also printed).

    python -m submit.leaderboard [--public leaderboard.csv|leaderboard.zip]

Columns: OOF F1 (threshold chosen on the same predictions: optimistic), nested-CV F1 (threshold
chosen on the other folds: honest), threshold, AUC, training time. In a local competition
(input/solution.csv present) each model and blend is also scored on the test labels at its own
threshold, and so is every submission file submit/*.csv. Rows are sorted by the least
optimistic score a row has: local-solution F1, else nested F1, else OOF F1.

Given the public leaderboard (`python -m submit.kaggle_cli leaderboard` downloads it; any CSV
with a Score column works) each row says where that score would place.
"""
from __future__ import annotations

import argparse
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import write_text
from core.cli import entry_point
from core.config import Config, load_config
from core.data import Split, load_solution, load_test, read_table
from core.errors import PipelineError
from core.metrics import f1_at
from core.paths import submit_dir
from submit.entries import Entry, all_entries, load_train_truth, nested_f1


@dataclass
class Row:
    kind: str
    name: str
    oof_f1: float | None = None
    nested_f1: float | None = None
    threshold: float | None = None
    auc: float | None = None
    seconds: float | None = None
    local_f1: float | None = None
    place: str = ""
    note: str = ""

    @property
    def sober(self) -> tuple[float | None, str]:
        """The least optimistic score this row has, and which one it is."""
        for value, label in ((self.local_f1, "local"), (self.nested_f1, "nested"), (self.oof_f1, "OOF")):
            if value is not None:
                return value, label
        return None, ""


@dataclass
class Board:
    rows: list[Row]
    files: list[Row] = field(default_factory=list)     # submit/*.csv scored on input/solution.csv
    public_size: int | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- scoring
def local_f1(labels: np.ndarray, ids: np.ndarray, solution: Split) -> float:
    """F1 of 0/1 labels (in `ids` order) against the solution, matched by id."""
    return f1_at(solution_labels(ids, solution), labels, 0.5)


def solution_labels(ids: np.ndarray, solution: Split) -> np.ndarray:
    """The solution's labels in `ids` order, matched by id."""
    position = pd.Index(solution.ids).get_indexer(ids)
    if (position < 0).any() or len(ids) != len(solution):
        raise PipelineError(f"the ids do not match {len(solution):,} rows of input/solution.csv; "
                            f"rebuild the local competition and the predictions together")
    return solution.target[position]


def entry_row(entry: Entry, truth, test: Split | None, solution: Split | None) -> Row:
    row = Row(entry.kind, entry.name, entry.oof_f1, None, None, entry.auc, entry.seconds)
    try:
        row.threshold = entry.threshold
        row.nested_f1 = nested_f1(entry, truth)
        if solution is not None and test is not None:
            labels = (entry.scores("test", len(test)) >= row.threshold).astype(np.int8)
            row.local_f1 = local_f1(labels, test.ids, solution)
    except PipelineError as e:  # one broken artifact should not hide the others: say why in its row
        row.note = str(e)
    return row


def file_rows(solution: Split, cfg: Config) -> list[Row]:
    c, rows = cfg.competition, []
    for path in sorted(submit_dir().glob("*.csv")):
        row = Row("file", path.name)
        try:
            table = read_table(path, [c.id, c.prediction])
            labels = pd.to_numeric(table[c.prediction], errors="raise").to_numpy()
            row.local_f1 = local_f1(labels, table[c.id].to_numpy(dtype=object), solution)
        except (PipelineError, ValueError) as e:
            row.note = str(e)
        rows.append(row)
    return rows


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


def place(score: float, public: np.ndarray) -> int:
    """1 + the number of public scores strictly better (F1: higher is better); ties share the place."""
    return int(np.sum(public > score)) + 1


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def place_text(score: float, public: np.ndarray) -> str:
    return f"would place {ordinal(place(score, public))} of {len(public) + 1:,}"


# ---------------------------------------------------------------- the board
def build(public: Path | None = None, cfg: Config | None = None) -> Board:
    cfg = cfg or load_config()
    solution = load_solution(cfg)
    test = load_test(cfg) if solution is not None else None
    truth = load_train_truth()
    board = Board([entry_row(e, truth, test, solution) for e in all_entries()])
    if solution is not None:
        board.files = file_rows(solution, cfg)
    board.rows.sort(key=_order)
    board.files.sort(key=_order)
    if public is not None:
        scores = read_public(public)
        board.public_size = len(scores)
        for row in board.rows + board.files:
            value, label = row.sober
            row.place = f"{place_text(value, scores)} ({label})" if value is not None else ""
    board.notes = _notes(board, solution is not None, truth is not None)
    return board


def _order(row: Row):
    value, _ = row.sober
    return (value is None, -(value or 0.0), row.name)


def _notes(board: Board, local: bool, have_folds: bool) -> list[str]:
    notes = ["OOF F1 chooses the threshold on the predictions it scores (optimistic); nested F1 chooses it "
             "on the other folds; local F1 scores input/solution.csv, never used to choose anything."]
    if not local:
        notes.append("No input/solution.csv (a real competition): rows are ranked by nested F1.")
    if not have_folds:
        notes.append("No folds/folds.csv: models' nested F1 cannot be computed.")
    if any(r.kind == "model" and r.nested_f1 is None and not r.note for r in board.rows):
        notes.append("Blank nested F1 for a model: no core.metrics.nested_f1 yet, or OOF made on other folds.")
    if board.public_size is not None:
        notes.append(f"Places compare the row's least optimistic score with {board.public_size:,} public "
                     f"leaderboard scores; the public leaderboard scores a different test set.")
    return notes


# ---------------------------------------------------------------- rendering
HEADER = ["kind", "name", "OOF F1", "nested F1", "local F1", "threshold", "AUC", "train time", "public place", "note"]


def cells(row: Row) -> list[str]:
    return [row.kind, row.name, _num(row.oof_f1), _num(row.nested_f1), _num(row.local_f1),
            _num(row.threshold, 6), _num(row.auc), _duration(row.seconds), row.place, row.note]


def markdown(board: Board) -> str:
    lines = ["# Leaderboard", "", _md_table(board.rows)]
    if board.files:
        lines += ["", "## Submission files scored on input/solution.csv", "", _md_table(board.files)]
    lines += [""] + [f"- {n}" for n in board.notes]
    return "\n".join(lines) + "\n"


def _md_table(rows: list[Row]) -> str:
    if not rows:
        return "_nothing trained yet: run `make train ensemble`_"
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells(r)) + " |" for r in rows]
    return "\n".join(out)


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def write(board: Board) -> Path:
    path = submit_dir() / "leaderboard.md"
    write_text(path, markdown(board))
    return path


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", type=Path, help="public leaderboard CSV or the zip `kaggle ... --download` gives")
    args = parser.parse_args(argv)
    board = build(args.public)
    path = write(board)
    print(markdown(board), end="")
    print(f"\n{path}")


if __name__ == "__main__":
    main()
