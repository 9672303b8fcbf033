"""Loading and validating the competition's files.

Every problem is an InputError that names the file, the row or column, and the fix. Texts come
back as numpy object arrays of Python str: pandas 3 string arrays do not convert to tensors.
`validate_competition` checks every file and how they relate before any work (`make folds`); each
loader checks again what it reads, so a file changed later is refused where it is used.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import Config, load_config
from core.errors import InputError
from core.paths import input_dir

GET_DATA = "get a competition with `make data` (Kaggle), `make demo` (offline) or `make local-competition SOURCE=file.csv`"


@dataclass(frozen=True)
class Split:
    """One table of the competition: ids and texts (object arrays of str), and labels where known."""
    ids: np.ndarray
    texts: np.ndarray
    target: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def validate_competition(cfg: Config | None = None) -> Split:
    """Every competition file and how they relate, checked before any work (`make folds` runs it first).

    Returns train.csv's table. Each later stage's loaders check again what they read.
    """
    cfg = cfg or load_config()
    train, test = load_competition(cfg)
    load_sample_submission(test, cfg)
    load_solution(cfg)
    return train


def load_competition(cfg: Config | None = None) -> tuple[Split, Split]:
    """train.csv and test.csv, checked each and against each other (no id in both)."""
    cfg = cfg or load_config()
    c = cfg.competition
    train, test = load_train(cfg), load_test(cfg)
    shared = set(train.ids) & set(test.ids)
    if shared:
        raise InputError(f"{c.test}: {len(shared)} {c.id} value(s) also in {c.train}, e.g. {_some(shared)}; "
                         f"a test row must not be a training row: restore both files from the same competition "
                         f"download")
    return train, test


def load_train(cfg: Config | None = None) -> Split:
    cfg = cfg or load_config()
    c = cfg.competition
    return labelled(read_table(input_dir() / c.train, [c.id, c.text, c.target]), cfg, c.train)


def labelled(df: pd.DataFrame, cfg: Config, name: str) -> Split:
    """Validate a labelled table (train.csv, or the source of a local competition)."""
    c = cfg.competition
    return Split(_ids(df, c.id, name), _texts(df, c.text, c.id, name), _labels(df, c.target, c.id, name))


def load_test(cfg: Config | None = None) -> Split:
    cfg = cfg or load_config()
    c = cfg.competition
    df = read_table(input_dir() / c.test, [c.id, c.text])
    return Split(_ids(df, c.id, c.test), _texts(df, c.text, c.id, c.test))


def load_sample_submission(test: Split, cfg: Config | None = None) -> pd.DataFrame:
    """The submission template; its ids must be exactly the test ids, in test.csv's order."""
    cfg = cfg or load_config()
    c = cfg.competition
    df = read_table(input_dir() / c.sample_submission, [c.id, c.prediction])
    ids = _ids(df, c.id, c.sample_submission)
    missing, extra = set(test.ids) - set(ids), set(ids) - set(test.ids)
    if missing or extra:
        raise InputError(
            f"{c.sample_submission}: its {c.id} values do not match {c.test} "
            f"({len(missing)} test ids missing, e.g. {_some(missing)}; {len(extra)} unknown ids, e.g. {_some(extra)}); "
            f"restore both files from the same competition download")
    if not np.array_equal(ids, test.ids):
        row = int(np.flatnonzero(ids != test.ids)[0])
        raise InputError(
            f"{c.sample_submission}: its {c.id} values are in another order than {c.test}'s (row {row + 1} is "
            f"{ids[row]!r}, {c.test} has {test.ids[row]!r}); restore both files from the same competition download")
    return df


def load_solution(cfg: Config | None = None) -> Split | None:
    """A local competition's test labels (input/solution.csv), or None for a real competition."""
    cfg = cfg or load_config()
    c = cfg.competition
    path = input_dir() / c.solution
    if not path.exists():
        return None
    df = read_table(path, [c.id, c.target])
    return Split(_ids(df, c.id, c.solution), np.array([], dtype=object), _labels(df, c.target, c.id, c.solution))


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a CSV as strings (no NA guessing: 'NA' is a valid question), checking it has `columns`."""
    if not path.exists():
        raise InputError(f"{path}: file not found; {GET_DATA}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty; restore it from the competition download ({GET_DATA})")
    _check_header(path, columns)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: line {_first_undecodable_line(path)} is not valid UTF-8; "
                         f"re-save the file as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"{path}: not a readable CSV ({str(e).strip()}); check quoting and the header line") from None
    absent = [col for col in columns if col not in df.columns]
    if absent:
        raise InputError(
            f"{path.name}: missing column(s) {absent} (it has {list(df.columns)}); rename the column in the file "
            f"or set the column name in the [competition] table of the configuration")
    if df.empty:
        raise InputError(f"{path}: no data rows, only the header line; restore it from the competition download")
    return df


def _check_header(path: Path, columns: list[str]) -> None:
    """The first line must be the comma-separated header: refuse another delimiter, or a missing header line."""
    with open(path, "rb") as f:
        first = f.readline().decode("utf-8-sig", errors="replace").strip()
    expected = ",".join(columns)
    for sep in (";", "\t", "|"):
        if set(columns) <= _fields(first, sep):
            raise InputError(f"{path}: separated by {sep!r}, not commas (its header is {first[:80]!r}); re-save it "
                             f"comma-separated, with the header line {expected!r}")
    if not set(columns) & _fields(first, ","):
        raise InputError(f"{path}: the first line is not the header, or not comma-separated (it reads "
                         f"{first[:80]!r}); the file must start with a header line naming the columns {expected!r} "
                         f"(the [competition] table of the configuration names them)")


def _fields(line: str, sep: str) -> set[str]:
    return {field.strip() for field in next(csv.reader([line], delimiter=sep), [])}


def _first_undecodable_line(path: Path) -> int:
    """pandas reports offsets within its read buffer, not the file: find the line ourselves."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def _ids(df: pd.DataFrame, col: str, name: str) -> np.ndarray:
    ids = df[col].to_numpy(dtype=object)
    empty = np.flatnonzero([not str(i).strip() for i in ids])
    if len(empty):
        raise InputError(f"{name}: empty {col} in row(s) {_rows(empty)}; every row needs an id")
    dup = df[col].duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        raise InputError(f"{name}: duplicate {col} {ids[rows[0]]!r} in rows {_rows(rows)}; ids must be unique, "
                         f"drop or renumber the duplicates")
    return ids


def _texts(df: pd.DataFrame, col: str, id_col: str, name: str) -> np.ndarray:
    texts = df[col].to_numpy(dtype=object)
    empty = np.flatnonzero([not isinstance(t, str) or not t.strip() for t in texts])
    if len(empty):
        raise InputError(f"{name}: empty or missing {col} in row(s) {_rows(empty)} "
                         f"({id_col} {df[id_col].iloc[empty[0]]!r}); fill in the text or drop the row")
    return texts


def _labels(df: pd.DataFrame, col: str, id_col: str, name: str) -> np.ndarray:
    raw = df[col].to_numpy(dtype=object)
    bad = np.flatnonzero([t.strip() not in ("0", "1") for t in raw])
    if len(bad):
        raise InputError(f"{name}: {col} must be 0 or 1, found {raw[bad[0]]!r} in row(s) {_rows(bad)} "
                         f"({id_col} {df[id_col].iloc[bad[0]]!r}); fix or drop those rows")
    return np.array([t.strip() == "1" for t in raw], dtype=np.int8)


def _rows(idx, shown: int = 5) -> str:
    """1-based data row numbers (the header is not a row), a few of them."""
    idx = list(idx)
    head = ", ".join(str(i + 1) for i in idx[:shown])
    return head + (f" and {len(idx) - shown} more" if len(idx) > shown else "")


def _some(values: set, shown: int = 3) -> str:
    return ", ".join(repr(v) for v in sorted(values)[:shown]) or "none"
