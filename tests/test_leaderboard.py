"""submit.leaderboard: local-solution F1 (checked against sklearn), ordering, public-leaderboard places."""
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from submit_fakes import full_world, write_blend
from conftest import here


def rows_by_name(board):
    return {r.name: r for r in board.rows + board.files}


def test_local_solution_f1_matches_sklearn(tmp_path, monkeypatch):
    from submit.leaderboard import build
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    make(here(), "blend", "mean")
    board = rows_by_name(build(here()))
    solution = pd.read_csv(tmp_path / "input" / "solution.csv", dtype={"qid": str})
    for name, folder, threshold in (("alpha", "models/alpha", 0.5), ("beta", "models/beta", 0.3),
                                    ("mean", "ensembles/mean", 0.45)):
        labels = (np.load(tmp_path / folder / "test.npy") >= threshold).astype(int)
        assert board[name].local == pytest.approx(f1_score(solution["target"], labels))
    submitted = pd.read_csv(tmp_path / "submit" / "mean.csv", dtype={"qid": str}).merge(solution, on="qid")
    assert board["mean.csv"].local == pytest.approx(f1_score(submitted["target"], submitted["prediction"]))


def test_rows_sorted_by_least_optimistic_score(tmp_path, monkeypatch):
    from submit.leaderboard import build
    full_world(tmp_path, monkeypatch)
    scores = [r.sober[0] for r in build(here()).rows]
    assert all(label == "local" for _, label in [r.sober for r in build(here()).rows])
    assert scores == sorted(scores, reverse=True)


def test_without_solution_rows_rank_by_nested_f1(tmp_path, monkeypatch):
    from submit.leaderboard import build
    full_world(tmp_path, monkeypatch, solution=False)
    write_blend(tmp_path, "mean", 0.45, seed=3, nested=0.99)
    board = build(here())
    assert board.rows[0].name == "mean" and board.rows[0].sober == (0.99, "nested")
    assert all(r.local is None for r in board.rows) and board.files == []


def test_public_leaderboard_place_wording(tmp_path, monkeypatch):
    from submit.leaderboard import build
    full_world(tmp_path, monkeypatch, solution=False)
    write_blend(tmp_path, "mean", 0.45, seed=3, nested=0.70)
    public = tmp_path / "lb.csv"
    pd.DataFrame({"TeamId": range(5), "Score": [0.71, 0.705, 0.70, 0.69, 0.5]}).to_csv(public, index=False)
    assert rows_by_name(build(here(), public))["mean"].place == "would place 3rd of 6 (nested)"


def test_public_leaderboard_zip_is_read(tmp_path, monkeypatch):
    from submit.leaderboard import read_public
    full_world(tmp_path, monkeypatch)
    archive = tmp_path / "fake-comp.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("fake-comp-publicleaderboard.csv", "TeamId,TeamName,SubmissionDate,Score\n1,a,2019-01-01,0.7\n")
    assert read_public(archive).tolist() == [0.7]


def test_markdown_is_written_and_lists_every_model_and_blend(tmp_path, monkeypatch):
    from submit.leaderboard import main
    full_world(tmp_path, monkeypatch)
    main([])
    text = (tmp_path / "submit" / "leaderboard.md").read_text()
    for name in ("| model | alpha |", "| model | beta |", "| blend | mean |", "2.1 min"):
        assert name in text


def test_broken_artifact_is_reported_in_its_row(tmp_path, monkeypatch):
    from submit.leaderboard import build
    full_world(tmp_path, monkeypatch)
    (tmp_path / "models" / "beta" / "test.npy").unlink()
    assert "test.npy not found" in rows_by_name(build(here()))["beta"].note


def test_rows_show_the_nested_score_their_artifacts_record(tmp_path, monkeypatch):
    from submit.leaderboard import build
    full_world(tmp_path, monkeypatch)
    board = rows_by_name(build(here()))
    assert board["alpha"].nested == pytest.approx(0.50) and board["mean"].nested == pytest.approx(0.4)


def test_an_artifact_of_an_older_schema_is_reported_in_its_row(tmp_path, monkeypatch):
    import json
    from submit.leaderboard import build
    full_world(tmp_path, monkeypatch)
    path = tmp_path / "models" / "beta" / "metrics.json"
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "schema"}))
    assert "older version" in rows_by_name(build(here()))["beta"].note


def test_each_row_shows_the_commit_of_the_code_that_made_it(tmp_path, monkeypatch):
    import json
    from submit.leaderboard import build, markdown
    w = full_world(tmp_path, monkeypatch)
    path = w["root"] / "models" / "alpha" / "metrics.json"
    run = {"code": {"commit": "89abcdef0123456789abcdef0123456789abcdef", "dirty": True}}
    path.write_text(json.dumps({**json.loads(path.read_text()), "run": run}))
    board = build(here())
    assert rows_by_name(board)["alpha"].commit == "89abcdef+dirty"
    assert "| commit |" in markdown(board) and "89abcdef+dirty" in markdown(board)


def test_a_previous_run_kept_by_a_rebuild_is_not_on_the_leaderboard(tmp_path, monkeypatch):
    import shutil
    from submit.leaderboard import build
    w = full_world(tmp_path, monkeypatch)
    alpha = w["root"] / "models" / "alpha"
    shutil.copytree(alpha, alpha.parent / "alpha-copy")
    shutil.move(alpha.parent / "alpha-copy", alpha / "previous")       # as FORCE=1 leaves it (core.claim)
    assert sorted(r.name for r in build(here()).rows) == ["alpha", "beta", "mean"]
