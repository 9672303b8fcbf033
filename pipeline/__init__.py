"""The notebook API: one import drives every stage from Jupyter or a Kaggle notebook.

    import pipeline
    run = pipeline.load(overrides={"folds": {"k": 3}})   # pipeline.toml's tables, these merged over them
    run.folds()                        # folds/folds.csv             -> DataFrame (id, fold)
    run.train(["tfidf-lr"])            # models/tfidf-lr/            -> leaderboard rows of the models trained
    run.blend(["mean"])                # ensembles/mean/             -> leaderboard rows of the blends
    run.submit("mean")                 # submit/mean.csv             -> its path
    run.leaderboard()                  # submit/leaderboard.md       -> DataFrame, best first
    run.oof("tfidf-lr")                # id, label, fold, OOF score  -> DataFrame

Each method calls the very function the stage's command line calls (`make` and `python -m ...` are thin
wrappers over them), inside `run.active()`: the workspace (PIPELINE_ROOT) and the configuration file
(CONFIG) the stages read, set for the call and restored afterwards. Overrides are merged over the base
configuration's tables and written to one file in the workspace, `.pipeline/config-<hash>.toml`, which
every stage reads as it reads pipeline.toml: one source of truth, also for `make ... CONFIG=that file`.
Problems raise core.errors.PipelineError (the message says how to fix it); nothing here exits.

This package imports every stage, so it sits above them: no stage imports it, and the data flow stays one
way (core <- folds <- models <- ensembles <- submit <- pipeline).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import core  # noqa: F401  (TensorFlow's environment, before any stage imports it)
from core.config import Config, config_path, load_config
from core.errors import PipelineError
from core.paths import workspace as default_workspace

__all__ = ["Pipeline", "PipelineError", "load"]


def load(config: str | Path | None = None, overrides: dict | None = None, workspace: str | Path | None = None,
         force: bool = False) -> "Pipeline":
    """A pipeline over `workspace` (default: PIPELINE_ROOT, else the repository) configured by `config` (a
    path; default: CONFIG, else pipeline.toml) with `overrides` merged over its tables, e.g.
    {"folds": {"k": 3}, "models": {"use-m3": {"epochs": 2}}, "train": {"seeds": 1}}; a None value removes
    a key. force: rebuild finished work made from something else (FORCE=1), keeping it in previous/.
    The configuration is checked at once."""
    root = Path(workspace).expanduser().resolve() if workspace else default_workspace()
    base = Path(config).expanduser().resolve() if config else config_path()
    path = base
    if overrides:
        from pipeline.overrides import write_merged
        path = write_merged(base, overrides, root / ".pipeline")
    run = Pipeline(root, path, force)
    run.config                                       # noqa: B018  (refuses a broken configuration now)
    return run


@dataclass(frozen=True)
class Pipeline:
    workspace: Path                                  # where input/, folds/, models/, ensembles/, submit/ are
    config_path: Path                                # the one file every stage reads
    force: bool = False

    # ---- the settings every stage reads ---------------------------------------------------------------
    @contextmanager
    def active(self) -> Iterator[Config]:
        """PIPELINE_ROOT, CONFIG (and FORCE) set for the block, as `make` sets them; restored afterwards."""
        settings = {"PIPELINE_ROOT": str(self.workspace), "CONFIG": str(self.config_path),
                    "FORCE": "1" if self.force else None}
        before = {k: os.environ.get(k) for k in settings}
        _set(settings)
        try:
            yield load_config(self.config_path)
        finally:
            _set(before)

    @property
    def config(self) -> Config:
        with self.active() as cfg:
            return cfg

    # ---- the stages ------------------------------------------------------------------------------------
    def demo(self) -> bool:
        """The synthetic demo competition into input/ (`make demo`'s first step); False when one is there."""
        from input.demo import write_demo
        with self.active() as cfg:
            return write_demo(cfg)

    def folds(self):
        """folds/folds.csv (`make folds`): a DataFrame of train.csv's ids and each row's fold."""
        import pandas as pd
        from folds.make_folds import write_folds
        with self.active() as cfg:
            train, fold = write_folds(cfg)
            return pd.DataFrame({cfg.competition.id: train.ids, "fold": fold})

    def modules(self, names: Iterable[str] | None = None) -> None:
        """Build the local hub modules (`make modules`), or only `names`; those already built are skipped."""
        from models.modules import build
        with self.active():
            build.main.__wrapped__([arg for n in _names(names) for arg in ("--name", n)])   # not the CLI's exits

    def train(self, models: Iterable[str] | str | None = None, n_jobs: int = 1, backend: str | None = None):
        """Train `models` (default: every enabled one) on every fold (`make train N_JOBS= BACKEND=`), after
        building the modules; a finished model is not trained again. Returns their leaderboard rows."""
        from models.train import train_models
        self.modules()
        with self.active() as cfg:
            done = train_models(_names(models) or None, cfg, n_jobs, backend)
        return self._rows(done)

    def blend(self, blends: Iterable[str] | str | None = None):
        """Fit `blends` (default: every enabled one) on the models' OOF predictions (`make ensemble`).
        Returns their leaderboard rows."""
        from ensembles.blend import run_blend
        with self.active() as cfg:
            names = _names(blends) or [b.name for b in cfg.blends.values() if b.enabled]
            for name in names:
                run_blend(name, cfg)
        return self._rows(names)

    def submit(self, name: str | None = None, kind: str = "blend") -> Path:
        """Write the validated submission submit/<name>.csv (`make submit`; default: the default blend;
        kind="model" submits a single model). Returns its path."""
        from submit.make_submission import make
        with self.active() as cfg:
            return make(kind, name or cfg.default_blend, cfg)

    def leaderboard(self, public: str | Path | None = None):
        """Every finished model and blend, best first (`make leaderboard`; also writes submit/leaderboard.md).
        public: a downloaded public leaderboard (zip or CSV) adds where each would place."""
        from submit import leaderboard
        with self.active() as cfg:
            board = leaderboard.build(Path(public) if public else None, cfg)
            leaderboard.write(board)
            return leaderboard.table(board)

    def report(self) -> Path:
        """submit/report.html (`make report`): one offline page with the leaderboard and every figure."""
        from submit.report import write_report
        with self.active() as cfg:
            return write_report(cfg)

    def run(self, models: Iterable[str] | str | None = None, n_jobs: int = 1, backend: str | None = None):
        """The whole pipeline as `make folds train ensemble submit leaderboard` runs it; the leaderboard."""
        self.folds()
        self.train(models, n_jobs, backend)
        self.blend()
        self.submit()
        return self.leaderboard()

    # ---- reading results -------------------------------------------------------------------------------
    def oof(self, name: str):
        """A finished model's or blend's out-of-fold predictions: a DataFrame of train.csv's ids, labels,
        folds, the OOF score and, for a thresholded metric, the 0/1 prediction at its OOF threshold."""
        import pandas as pd
        from core.data import load_train
        from folds.make_folds import load_folds
        with self.active() as cfg:
            result = _result(name)
            train = load_train(cfg)
            c, scores = cfg.competition, result.scores("oof", len(train))
            table = pd.DataFrame({c.id: train.ids, c.target: train.target.astype(int),
                                  "fold": load_folds(train, cfg), "oof": scores})
            if result.threshold is not None:
                table["predicted"] = cfg.metric.submitted(scores, result.threshold)
            return table

    def test_predictions(self, name: str):
        """A finished model's or blend's test scores (the mean over its fold models), in test.csv's order,
        with the labels it submits for a thresholded metric."""
        import pandas as pd
        from core.data import load_test
        with self.active() as cfg:
            result = _result(name)
            test = load_test(cfg)
            scores = result.test_scores(test)
            table = pd.DataFrame({cfg.competition.id: test.ids, "score": scores})
            if result.threshold is not None:
                table[cfg.competition.prediction] = cfg.metric.submitted(scores, result.threshold)
            return table

    def _rows(self, names: Iterable[str]):
        board = self.leaderboard()
        return board[board["name"].isin(list(names))].reset_index(drop=True)


def _result(name: str):
    """The finished model or blend called `name` (a model first, as the leaderboard lists both)."""
    from core.paths import ensemble_dir, model_dir
    from core.results import read_result
    if (model_dir(name) / "metrics.json").exists():
        return read_result("model", name)
    if (ensemble_dir(name) / "metrics.json").exists():
        return read_result("blend", name)
    raise PipelineError(f"no finished model or blend named {name!r} in {default_workspace()}; "
                        f"train it with run.train([{name!r}]) or run.blend([{name!r}])")


def _names(names: Iterable[str] | str | None) -> list[str]:
    return [names] if isinstance(names, str) else list(names or [])


def _set(settings: dict) -> None:
    for key, value in settings.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
