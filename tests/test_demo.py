import pandas as pd

from conftest import here, write_competition
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


def test_the_demo_takes_the_configured_competitions_columns_and_numeric_ids(workspace):
    from core.config import load_config
    (workspace / "pipeline.toml").write_text((workspace / "pipeline.toml").read_text().replace(
        'id = "qid"\ntext = "question_text"\ntarget = "target"\nprediction = "prediction"',
        'id = "id"\ntext = ["keyword", "text"]\ntarget = "target"\nprediction = "target"\n'
        'extra_columns = ["location"]\nnumeric_ids = true'))
    demo.write_demo(here(), train_rows=200, test_rows=50)
    read = {name: pd.read_csv(workspace / "input" / f"{name}.csv", keep_default_na=False)
            for name in ("train", "test", "sample_submission", "solution")}
    assert list(read["train"].columns) == ["id", "keyword", "location", "text", "target"]
    assert list(read["test"].columns) == ["id", "keyword", "location", "text"]
    assert list(read["sample_submission"].columns) == ["id", "target"]
    assert read["train"]["id"].dtype.kind == "i" and read["test"]["id"].tolist() == read["solution"]["id"].tolist()
    assert (read["train"]["keyword"] == "").any() and (read["train"]["location"] == "").any()   # some missing
    assert read["train"]["text"].str.contains("?", regex=False).all()                         # the question
