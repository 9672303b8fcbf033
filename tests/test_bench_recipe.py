"""The benchmarks' own plumbing on tiny data: the notebook recipe end to end, and the skips without the sample."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from conftest import questions, write_competition, write_vectors
from tests.benchmarks import bench_cache_speed, notebook_recipe


def test_the_notebook_recipe_scores_a_local_competition(workspace):
    from models.modules.build import main as build_modules
    write_competition(workspace)
    pd.DataFrame(questions(80)).iloc[60:][["qid", "target"]].to_csv(workspace / "input" / "solution.csv", index=False)
    write_vectors(workspace / "vectors.txt")
    build_modules(["--name", "tiny"])
    result = notebook_recipe.run(workspace, module="tiny", max_epochs=1)
    assert result["epochs"] == 1 and result["train_rows"] == 54 and result["val_rows"] == 6
    assert 0 <= result["local_f1_at_0.5"] <= 1 and 0 <= result["local_f1_tuned"] <= 1
    assert result["examples_per_second"] > 0


def test_the_cache_benchmark_skips_without_the_shared_sample(monkeypatch):
    monkeypatch.setattr(bench_cache_speed, "SAMPLE", Path("/nonexistent/train_sample.csv"))
    assert "skipped: /nonexistent/train_sample.csv not found" in bench_cache_speed.run()
