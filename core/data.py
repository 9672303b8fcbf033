"""Loading and validating the competition's files.

Every problem is an InputError that names the file, the row or column, and the fix. Texts come
back as numpy object arrays of Python str: pandas 3 string arrays do not convert to tensors.
`validate_competition` checks every file and how they relate before any work (`make folds`); each
loader checks again what it reads, so a file changed later is refused where it is used.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import Competition, Config
from core.errors import InputError
from core.run import Run

PACKED = {b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a zip archive", b"BZh": "bzip2-compressed",
          b"\xfd7zXZ\x00": "xz-compressed", b"(\xb5/\xfd": "zstd-compressed", b"7z\xbc\xaf'\x1c": "a 7-Zip archive"}
GET_DATA = ("get a competition with `make data` (Kaggle), `make demo` (offline) or "
            "`make local-competition SOURCE=file.csv`")


@dataclass(frozen=True)
class Split:
    """One table of the competition: ids and texts (object arrays of str), and labels where known."""
    ids: np.ndarray
    texts: np.ndarray
    target: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def texts_fingerprint(texts: np.ndarray) -> str:
    """What a set of texts is, in order: a model's test predictions are made for exactly these (and the caches of
    embeddings are keyed by it)."""
    digest = hashlib.sha256()
    for t in texts:
        digest.update(t.encode("utf-8", errors="surrogatepass") + b"\0")
    return digest.hexdigest()[:16]


def validate_competition(run: Run) -> Split:
    """Every competition file and how they relate, checked before any work (`make folds` runs it first).

    Returns train.csv's table. Each later stage's loaders check again what they read.
    """
    train, test = load_competition(run)
    load_sample_submission(run, test)
    load_solution(run)
    return train


def load_competition(run: Run) -> tuple[Split, Split]:
    """train.csv and test.csv, checked each and against each other (no id in both)."""
    c = run.config.competition
    train, test = load_train(run), load_test(run)
    shared = set(train.ids) & set(test.ids)
    if shared:
        raise InputError(f"{c.test}: {len(shared)} {c.id} value(s) also in {c.train}, e.g. {_some(shared)}; "
                         f"a test row must not be a training row: restore both files from the same competition "
                         f"download")
    return train, test


def load_train(run: Run) -> Split:
    c = run.config.competition
    return labelled(read_table(run.input_dir / c.train, [c.id, *c.text_columns, c.target]), run.config, c.train)


def labelled(df: pd.DataFrame, cfg: Config, name: str) -> Split:
    """Validate a labelled table (train.csv, or the source of a local competition)."""
    c = cfg.competition
    return Split(_ids(df, c.id, name), _texts(df, c, name), _labels(df, c.target, c.id, name))


def load_test(run: Run) -> Split:
    c = run.config.competition
    df = read_table(run.input_dir / c.test, [c.id, *c.text_columns])
    return Split(_ids(df, c.id, c.test), _texts(df, c, c.test))


def load_sample_submission(run: Run, test: Split) -> pd.DataFrame:
    """The submission template; its ids must be exactly the test ids, in test.csv's order."""
    c = run.config.competition
    df = read_table(run.input_dir / c.sample_submission, [c.id, c.prediction])
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


def load_solution(run: Run) -> Split | None:
    """A local competition's test labels (input/solution.csv), or None for a real competition."""
    c = run.config.competition
    path = run.input_dir / c.solution
    if not path.exists():
        return None
    df = read_table(path, [c.id, c.target])
    return Split(_ids(df, c.id, c.solution), np.array([], dtype=object), _labels(df, c.target, c.id, c.solution))


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a CSV as strings (no NA guessing: 'NA' is a valid question), checking it has `columns`."""
    _check_header(path, _text_head(path), columns)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: line {_first_undecodable_line(path)} is not valid UTF-8; "
                         f"re-save the file as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"{path}: not a readable CSV ({str(e).strip()}); check quoting and the header line") from None
    except OSError as e:
        raise _unreadable(path, e) from None
    absent = [col for col in columns if col not in df.columns]
    if absent:
        raise InputError(
            f"{path.name}: missing column(s) {absent} (it has {list(df.columns)}); rename the column in the file "
            f"or set the column name in the [competition] table of the configuration")
    if df.empty:
        raise InputError(f"{path}: no data rows, only the header line; restore it from the competition download")
    return df


def _text_head(path: Path) -> bytes:
    """The file's first 64 KB, once it is known to be a file that can be read and holds uncompressed text."""
    if not path.exists():
        raise InputError(f"{path}: file not found; {GET_DATA}")
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a file; put the competition's {path.name} at this path "
                         f"(move the file out of the folder, then remove the folder)")
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as e:
        raise _unreadable(path, e) from None
    if not head:
        raise InputError(f"{path}: the file is empty; restore it from the competition download ({GET_DATA})")
    packed = next((kind for magic, kind in PACKED.items() if head.startswith(magic)), None)
    if packed:
        raise InputError(f"{path}: {packed}, not a CSV text file; unpack it (a Kaggle download: unzip it into "
                         f"input/) so that {path.name} is the CSV itself")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path}: UTF-16 text; re-save the file as UTF-8")
    if b"\x00" in head:
        raise InputError(f"{path}: binary data (NUL bytes), not a CSV text file; restore it from the competition "
                         f"download ({GET_DATA})")
    return head


def _unreadable(path: Path, error: OSError) -> InputError:
    return InputError(f"{path}: cannot be read ({error.strerror or error}); check that the file is yours to read "
                      f"(ls -l {path}), or restore it from the competition download")


def _check_header(path: Path, head: bytes, columns: list[str]) -> None:
    """The first line must be the comma-separated header, each column named once: refuse another delimiter, a
    missing header line, or a repeated name (pandas would silently rename it)."""
    first = next(iter(head.decode("utf-8-sig", errors="replace").splitlines()), "").strip()
    expected = ",".join(columns)
    for sep in (";", "\t", "|"):
        if set(columns) <= _fields(first, sep):
            raise InputError(f"{path}: separated by {sep!r}, not commas (its header is {first[:80]!r}); re-save it "
                             f"comma-separated, with the header line {expected!r}")
    if not set(columns) & _fields(first, ","):
        raise InputError(f"{path}: the first line is not the header, or not comma-separated (it reads "
                         f"{first[:80]!r}); the file must start with a header line naming the columns {expected!r} "
                         f"(the [competition] table of the configuration names them)")
    names = next(csv.reader([first]))
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{path}: the header names column(s) {repeated} more than once; give each column its own "
                         f"name (rename or drop the repeated one)")


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


def _texts(df: pd.DataFrame, c: Competition, name: str) -> np.ndarray:
    """Each row's text: its text column, or its text columns combined (`combine`), the one text every stage,
    cache and stamp sees. A missing value is an empty one; a row whose text columns are all empty is refused."""
    columns = [[v if isinstance(v, str) else "" for v in df[col].to_numpy(dtype=object)] for col in c.text_columns]
    empty = np.flatnonzero([not any(v.strip() for v in values) for values in zip(*columns)])
    if len(empty):
        what = c.text_columns[0] if len(columns) == 1 else f"text (every one of {', '.join(c.text_columns)})"
        raise InputError(f"{name}: empty or missing {what} in row(s) {_rows(empty)} "
                         f"({c.id} {df[c.id].iloc[empty[0]]!r}); fill in the text or drop the row")
    if len(columns) == 1 and not c.text_template:
        return np.array(columns[0], dtype=object)
    return np.array([combine(dict(zip(c.text_columns, values)), c) for values in zip(*columns)], dtype=object)


def combine(values: dict[str, str], c: Competition) -> str:
    """One row's text from its text columns' values: [competition] text_template filled in, or else the
    non-empty values joined by a space."""
    if c.text_template:
        return c.text_template.format_map(values)
    return " ".join(v for v in values.values() if v.strip())


def _labels(df: pd.DataFrame, col: str, id_col: str, name: str) -> np.ndarray:
    raw = df[col].to_numpy(dtype=object)
    labels = [_label(t) for t in raw]
    bad = np.flatnonzero([label is None for label in labels])
    if len(bad):
        raise InputError(f"{name}: {col} must be 0 or 1, found {raw[bad[0]]!r} in row(s) {_rows(bad)} "
                         f"({id_col} {df[id_col].iloc[bad[0]]!r}); fix or drop those rows")
    return np.array(labels, dtype=np.int8)


@lru_cache(maxsize=256)
def _label(text: str) -> int | None:
    """0 or 1 from a label as files write it: 0 / 1, 0.0 / 1.0 (pandas writes an integer column that once held a
    NaN so), True / False (pandas reads those as booleans); None for anything else."""
    text = text.strip().lower()
    if text in ("true", "false"):
        return int(text == "true")
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value in (0.0, 1.0) else None


def _rows(idx, shown: int = 5) -> str:
    """1-based data row numbers (the header is not a row), a few of them."""
    idx = list(idx)
    head = ", ".join(str(i + 1) for i in idx[:shown])
    return head + (f" and {len(idx) - shown} more" if len(idx) > shown else "")


def _some(values: set, shown: int = 3) -> str:
    return ", ".join(repr(v) for v in sorted(values)[:shown]) or "none"
