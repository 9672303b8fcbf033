import pandas as pd

from conftest import write_competition
from input import demo


def test_the_demo_has_about_six_percent_positives_and_fixed_content():
    rows = demo.demo_competition()
    assert 0.045 < rows["target"].mean() < 0.08
    assert rows.equals(demo.demo_competition())


def test_the_demo_writes_a_competition_into_an_empty_input(workspace):
    demo.main()
    train = pd.read_csv(workspace / "input" / "train.csv")
    assert len(train) == demo.TRAIN_ROWS and (workspace / "input" / "solution.csv").exists()


def test_the_demo_never_overwrites_a_competition(workspace):
    write_competition(workspace)
    before = (workspace / "input" / "train.csv").read_bytes()
    demo.main()
    assert (workspace / "input" / "train.csv").read_bytes() == before


def test_the_demos_positives_come_from_signals_of_every_difficulty_with_some_labels_wrong():
    rows = demo.demo_competition(families=True)
    positives = rows[rows["truth"] == 1]
    assert set(positives["family"]) == set(demo.FAMILIES)
    for family in demo.FAMILIES:                  # each has sincere look-alikes too
        assert ((rows["family"] == family) & (rows["truth"] == 0)).sum() > 0
    wrong = (rows["target"] != rows["truth"]).mean()
    assert 0.002 < wrong < 0.02
    assert rows["question_text"].nunique() > 0.7 * len(rows)
