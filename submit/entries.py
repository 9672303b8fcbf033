"""What the submit stage reads: a trained model or a blend, as one uniform Entry.

A model's test labels are test.npy >= metrics["oof"]["threshold"]; a blend's are
test.npy >= metrics["threshold"] (which may live in rank space: the blend stage guarantees
the comparison is valid). Both keep the OOF scores, so the nested-CV F1 can be recomputed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import PipelineError
from core.paths import ensemble_dir, model_dir, workspace


@dataclass(frozen=True)
class Entry:
    kind: str                 # "model" or "blend"
    name: str
    folder: Path
    metrics: dict

    @property
    def threshold(self) -> float:
        m = self.metrics
        value = m.get("threshold") if self.kind == "blend" else m.get("oof", {}).get("threshold")
        if value is None:
            where = '"threshold"' if self.kind == "blend" else '"oof" -> "threshold"'
            raise PipelineError(f"{self.folder / 'metrics.json'}: no {where}; rebuild the {self.kind}")
        return float(value)

    @property
    def members(self) -> list[str]:
        return list(self.metrics.get("members", [])) if self.kind == "blend" else [self.name]

    @property
    def oof_f1(self) -> float | None:
        return _number(self.metrics.get("oof", {}).get("f1"))

    @property
    def auc(self) -> float | None:
        return _number(self.metrics.get("oof", {}).get("auc"))

    @property
    def seconds(self) -> float | None:
        return _number(self.metrics.get("wall_seconds"))

    @property
    def recorded_nested_f1(self) -> float | None:
        """A blend records its nested F1; a model's is computed by the caller from oof.npy."""
        return _number(self.metrics.get("nested", {}).get("f1"))

    def scores(self, split: str, n: int) -> np.ndarray:
        """oof.npy or test.npy as float64, checked for length and finiteness."""
        path = self.folder / f"{split}.npy"
        if not path.exists():
            raise PipelineError(f"{path} not found; rebuild the {self.kind} ({_how(self)})")
        s = np.load(path, allow_pickle=False).astype(np.float64).ravel()
        if len(s) != n:
            raise PipelineError(f"{path}: {len(s):,} scores for {n:,} rows; it was made from other data, "
                                f"rebuild it ({_how(self)})")
        bad = np.flatnonzero(~np.isfinite(s))
        if len(bad):
            raise PipelineError(f"{path}: {len(bad):,} NaN/inf score(s), first at row {bad[0] + 1}; "
                                f"refusing to label them; rebuild the {self.kind} ({_how(self)})")
        return s


def load_entry(kind: str, name: str) -> Entry:
    folder = ensemble_dir(name) if kind == "blend" else model_dir(name)
    path = folder / "metrics.json"
    if not path.exists():
        raise PipelineError(f"{path} not found: the {kind} {name!r} is not finished; {_how_named(kind, name)}")
    return Entry(kind, name, folder, _read(path))


def all_entries() -> list[Entry]:
    """Every finished model (models/*/metrics.json) and blend (ensembles/*/metrics.json)."""
    found = []
    for kind, parent in (("model", workspace() / "models"), ("blend", workspace() / "ensembles")):
        for path in sorted(parent.glob("*/metrics.json")):
            found.append(Entry(kind, path.parent.name, path.parent, _read(path)))
    return found


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise PipelineError(f"{path}: not valid JSON ({e}); rebuild it") from None


def _number(value) -> float | None:
    return None if value is None else float(value)


def _how(entry: Entry) -> str:
    return _how_named(entry.kind, entry.name)


def _how_named(kind: str, name: str) -> str:
    if kind == "blend":
        return f"`python -m ensembles.blend --blend {name}` or `make ensemble`"
    return f"`python -m models.train --model {name}` or `make train`"


# ---------------------------------------------------------------- nested-CV F1
try:  # written by the ensembles stage into core.metrics; absent until then
    from core.metrics import nested_f1 as _nested_f1
except ImportError:  # pragma: no cover - depends on the other stage
    _nested_f1 = None


@dataclass(frozen=True)
class TrainTruth:
    """Train labels and folds, for recomputing a model's nested F1 from its OOF scores."""
    y: np.ndarray
    fold: np.ndarray
    fingerprint: str


def load_train_truth() -> TrainTruth | None:
    """None when train.csv or folds.csv is missing: the nested F1 is then left blank, not guessed."""
    from core.data import load_train
    from core.paths import folds_file
    from folds.make_folds import folds_fingerprint, load_folds
    if not folds_file().exists():
        return None
    try:
        train = load_train()
        return TrainTruth(train.target, load_folds(train), folds_fingerprint())
    except PipelineError:
        return None


def nested_f1(entry: Entry, truth: TrainTruth | None) -> float | None:
    """The nested-CV F1 (threshold chosen on the other folds): recorded for blends, computed for models.

    None where it cannot be computed honestly: no nested_f1 in core.metrics yet, no folds, or
    OOF scores made on other folds than folds/folds.csv.
    """
    if entry.recorded_nested_f1 is not None:
        return entry.recorded_nested_f1
    if _nested_f1 is None or truth is None or entry.metrics.get("folds_fingerprint") != truth.fingerprint:
        return None
    result = _nested_f1(truth.y, entry.scores("oof", len(truth.y)), truth.fold)
    return float(result["f1"] if isinstance(result, dict) else result)
