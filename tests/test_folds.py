import pandas as pd
import pytest

from conftest import SHARED, here, write_competition
from core.data import load_train
from core.errors import PipelineError
from folds import make_folds


@pytest.fixture
def competition(workspace):
    write_competition(workspace, n_train=90)
    return workspace


def test_every_row_is_in_exactly_one_fold_in_train_order(competition):
    make_folds.main()
    table = pd.read_csv(competition / "folds" / "folds.csv", dtype={"qid": str})
    assert list(table.columns) == ["qid", "fold"]
    assert table["qid"].tolist() == list(load_train(here()).ids)
    assert sorted(table["fold"].unique()) == [0, 1, 2]


def test_the_same_input_gives_the_same_bytes(competition):
    make_folds.main()
    first = (competition / "folds" / "folds.csv").read_bytes()
    (competition / "folds" / "folds.csv").unlink()
    make_folds.main()
    assert (competition / "folds" / "folds.csv").read_bytes() == first


def test_folds_that_would_change_are_refused_without_force(competition, monkeypatch):
    make_folds.main()
    path = competition / "pipeline.toml"
    path.write_text(path.read_text().replace("seed = 7", "seed = 8"))
    with pytest.raises(SystemExit):
        make_folds.main()
    monkeypatch.setenv("FORCE", "1")
    make_folds.main()


def test_folds_of_other_rows_are_refused_by_later_stages(competition):
    make_folds.main()
    train = load_train(here())
    shuffled = type(train)(train.ids[::-1], train.texts[::-1], train.target[::-1])
    with pytest.raises(PipelineError, match="does not match input/train.csv"):
        make_folds.load_folds(here(), shuffled)


def test_positive_rate_per_fold_is_within_half_a_point_on_real_data():
    sample = SHARED / "quora" / "train_sample.csv"
    if not sample.exists():
        pytest.skip(f"{sample} absent")
    target = pd.read_csv(sample)["target"].to_numpy()
    fold = make_folds.assign_folds(target, 5, 42)
    rates = [target[fold == f].mean() for f in range(5)]
    assert max(abs(r - target.mean()) for r in rates) < 0.005
