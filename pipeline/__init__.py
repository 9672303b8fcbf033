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
wrappers over them) with the pipeline's run (core.run.Run: the workspace, the configuration file, FORCE and the
other settings), read from the environment once, by `load`, and never changed there. Overrides are merged over the base
configuration's tables and written to one file in the workspace, `.pipeline/config-<hash>.toml`, which
every stage reads as it reads pipeline.toml: one source of truth, also for `make ... CONFIG=that file`.
Problems raise core.errors.PipelineError (the message says how to fix it); nothing here exits.

This package imports every stage, so it sits above them: no stage imports it, and the data flow stays one
way (core <- folds <- models <- ensembles <- submit <- pipeline).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import core  # noqa: F401  (TensorFlow's environment, before any stage imports it)
from core.config import Config
from core.errors import PipelineError
from core.run import Run

__all__ = ["Pipeline", "PipelineError", "load"]


def load(config: str | Path | None = None, overrides: dict | None = None, workspace: str | Path | None = None,
         force: bool = False, **settings) -> "Pipeline":
    """A pipeline over `workspace` (default: PIPELINE_ROOT, else the repository) configured by `config` (a
    path; default: CONFIG, else pipeline.toml) with `overrides` merged over its tables, e.g.
    {"folds": {"k": 3}, "models": {"use-m3": {"epochs": 2}}, "train": {"seeds": 1}}; a None value removes
    a key. force: rebuild finished work made from something else (FORCE=1), keeping it in previous/.
    settings: the run's other settings (core.run.Run: devices, precision, n_jobs, backend, budget).
    The configuration is checked at once."""
    run = Run.from_environment()                     # the notebook's entry point: make's variables, if set
    root = Path(workspace).expanduser().resolve() if workspace else run.workspace
    path = Path(config).expanduser().resolve() if config else run.config_path
    if overrides:
        from pipeline.overrides import write_merged
        path = write_merged(path, overrides, root / ".pipeline")
    pipeline = Pipeline(run.with_(workspace=root, config_path=path, force=force or run.force, **settings))
    pipeline.config                                  # noqa: B018  (refuses a broken configuration now)
    return pipeline


@dataclass(frozen=True)
class Pipeline:
    settings: Run                                    # the workspace, the one configuration file, the run's settings

    @property
    def workspace(self) -> Path:
        return self.settings.workspace

    @property
    def config_path(self) -> Path:
        return self.settings.config_path

    @property
    def config(self) -> Config:
        return self.settings.config

    # ---- the stages ------------------------------------------------------------------------------------
    def demo(self) -> bool:
        """The synthetic demo competition into input/ (`make demo`'s first step); False when one is there."""
        from input.demo import write_demo
        return write_demo(self.settings)

    def folds(self):
        """folds/folds.csv (`make folds`): a DataFrame of train.csv's ids and each row's fold."""
        import pandas as pd
        from folds.make_folds import write_folds
        train, fold = write_folds(self.settings)
        return pd.DataFrame({self.config.competition.id: train.ids, "fold": fold})

    def modules(self, names: Iterable[str] | None = None) -> None:
        """Build the local hub modules (`make modules`), or only `names`; those already built are skipped."""
        from models.modules.build import build_modules
        build_modules(self.settings, _names(names) or None)

    def train(self, models: Iterable[str] | str | None = None, n_jobs: int = 1, backend: str | None = None):
        """Train `models` (default: every enabled one) on every fold (`make train N_JOBS= BACKEND=`), after
        building the modules; a finished model is not trained again. Returns their leaderboard rows."""
        from models.train import train_models
        self.modules()
        done = train_models(self.settings.with_(n_jobs=n_jobs, backend=backend or ""), _names(models) or None)
        return self._rows(done)

    def blend(self, blends: Iterable[str] | str | None = None):
        """Fit `blends` (default: every enabled one) on the models' OOF predictions (`make ensemble`).
        Returns their leaderboard rows."""
        from ensembles.blend import run_blend
        names = _names(blends) or [b.name for b in self.config.blends.values() if b.enabled]
        for name in names:
            run_blend(self.settings, name)
        return self._rows(names)

    def submit(self, name: str | None = None, kind: str = "blend") -> Path:
        """Write the validated submission submit/<name>.csv (`make submit`; default: the blend the pipeline sends,
        [ensemble] default or the best by nested score; kind="model" submits a single model). Returns its path."""
        from submit.make_submission import make
        return make(self.settings, kind, name)

    def leaderboard(self, public: str | Path | None = None):
        """Every finished model and blend, best first (`make leaderboard`; also writes submit/leaderboard.md).
        public: a downloaded public leaderboard (zip or CSV) adds where each would place."""
        from submit import leaderboard
        board = leaderboard.build(self.settings, Path(public) if public else None)
        leaderboard.write(self.settings, board)
        return leaderboard.table(board)

    def report(self) -> Path:
        """submit/report.html (`make report`): one offline page with the leaderboard and every figure."""
        from submit.report import write_report
        return write_report(self.settings)

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
        cfg, result = self.config, self._result(name)
        train = load_train(self.settings)
        c, scores = cfg.competition, result.scores("oof", len(train))
        table = pd.DataFrame({c.id: train.ids, c.target: train.target.astype(int),
                              "fold": load_folds(self.settings, train), "oof": scores})
        if result.threshold is not None:
            table["predicted"] = cfg.metric.submitted(scores, result.threshold)
        return table

    def test_predictions(self, name: str):
        """A finished model's or blend's test scores (the mean over its fold models), in test.csv's order,
        with the labels it submits for a thresholded metric."""
        import pandas as pd
        from core.data import load_test
        cfg, result = self.config, self._result(name)
        test = load_test(self.settings)
        scores = result.test_scores(test)
        table = pd.DataFrame({cfg.competition.id: test.ids, "score": scores})
        if result.threshold is not None:
            table[cfg.competition.prediction] = cfg.metric.submitted(scores, result.threshold)
        return table

    def _rows(self, names: Iterable[str]):
        board = self.leaderboard()
        return board[board["name"].isin(list(names))].reset_index(drop=True)

    def _result(self, name: str):
        """The finished model or blend called `name` (a model first, as the leaderboard lists both)."""
        from core.results import read_result
        for kind, folder in (("model", self.settings.model_dir(name)), ("blend", self.settings.ensemble_dir(name))):
            if (folder / "metrics.json").exists():
                return read_result(self.settings, kind, name)
        raise PipelineError(f"no finished model or blend named {name!r} in {self.workspace}; "
                            f"train it with run.train([{name!r}]) or run.blend([{name!r}])")


def _names(names: Iterable[str] | str | None) -> list[str]:
    return [names] if isinstance(names, str) else list(names or [])
