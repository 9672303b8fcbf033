"""The notebook API (pipeline/): the example in docs/notebook.md runs as written, on the tests' small data."""
import os
import re

import pandas as pd
import pytest

from conftest import write_competition, write_vectors
from core.errors import PipelineError
from core.paths import REPO


def documented_example() -> str:
    """The notebook example: the first python block of docs/notebook.md."""
    return re.search(r"```python\n(.*?)```", (REPO / "docs" / "notebook.md").read_text(), re.S).group(1)


def disable(workspace, *names):
    """Switch catalogue entries of the workspace's configuration off."""
    text = (workspace / "pipeline.toml").read_text()
    for name in names:
        text = text.replace(f"[models.{name}]\n", f"[models.{name}]\nenabled = false\n")
    (workspace / "pipeline.toml").write_text(text)


@pytest.mark.slow
def test_the_documented_example_runs_and_returns_dataframes(workspace):
    write_competition(workspace)
    write_vectors(workspace / "vectors.txt")
    disable(workspace, "tiny-tokens", "tiny-tuned")
    before = {k: os.environ.get(k) for k in ("PIPELINE_ROOT", "CONFIG", "FORCE")}
    scope: dict = {}
    exec(compile(documented_example(), "docs/notebook.md", "exec"), scope)
    board, oof, path = scope["board"], scope["oof"], scope["path"]
    assert isinstance(board, pd.DataFrame) and {"tfidf-lr", "tiny-frozen", "mean"} <= set(board["name"])
    assert board.attrs["metric"] == "f1" and board["oof"].notna().all()
    assert list(oof.columns) == ["qid", "target", "fold", "oof", "predicted"] and len(oof) == 60
    assert oof["fold"].nunique() == 3                        # the override: 3 folds (the config says 3 too)
    assert path == workspace / "submit" / "mean.csv" and path.exists()
    assert (workspace / "submit" / "leaderboard.md").exists()
    assert {k: os.environ.get(k) for k in before} == before  # the stages' settings are restored after each call


def test_overrides_are_merged_over_the_tables_into_one_file_every_stage_reads(workspace):
    import tomllib
    import pipeline
    run = pipeline.load(overrides={"folds": {"k": 4}, "train": {"epochs": 1},
                                   "models": {"tiny-tuned": None, "tiny-frozen": {"head": [4, 2]}}})
    assert run.config_path.parent == workspace / ".pipeline"
    merged = tomllib.loads(run.config_path.read_text())
    assert merged["folds"] == {"k": 4, "seed": 7} and merged["train"]["epochs"] == 1
    cfg = run.config
    assert cfg.folds.k == 4 and "tiny-tuned" not in cfg.models
    from models.catalogue import spec_of
    assert spec_of(cfg, "tiny-frozen").options.head == (4, 2)
    assert pipeline.load(overrides={"folds": {"k": 4}, "train": {"epochs": 1},
                                    "models": {"tiny-tuned": None, "tiny-frozen": {"head": [4, 2]}}}
                         ).config_path == run.config_path          # the same overrides, the same file


def test_problems_raise_pipeline_errors_never_exit(workspace):
    import pipeline
    with pytest.raises(PipelineError, match=r"\[folds\] has unknown key"):
        pipeline.load(overrides={"folds": {"kk": 3}})
    with pytest.raises(PipelineError, match="has no TOML form"):
        pipeline.load(overrides={"folds": {"k": object()}})
    run = pipeline.load()
    with pytest.raises(PipelineError, match="make data"):          # no competition yet
        run.folds()
    with pytest.raises(PipelineError, match="no finished model or blend named 'nope'"):
        run.oof("nope")
    with pytest.raises(PipelineError, match="BACKEND=ray"):
        run.train(["tfidf-lr"], backend="ray")
