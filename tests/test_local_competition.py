import pandas as pd
import pytest

from conftest import questions
from input import local_competition


@pytest.fixture
def source(workspace):
    path = workspace / "labelled.csv"
    questions(200).to_csv(path, index=False)
    return path


def test_a_labelled_csv_becomes_train_test_sample_and_solution(workspace, source):
    local_competition.main(["--source", str(source), "--test-fraction", "0.25"])
    inp = workspace / "input"
    train, test = pd.read_csv(inp / "train.csv"), pd.read_csv(inp / "test.csv")
    sample, solution = pd.read_csv(inp / "sample_submission.csv"), pd.read_csv(inp / "solution.csv")
    assert (len(train), len(test)) == (150, 50)
    assert "target" not in test.columns
    assert list(sample.columns) == ["qid", "prediction"] and sample["qid"].tolist() == test["qid"].tolist()
    assert solution["qid"].tolist() == test["qid"].tolist()
    assert train["target"].mean() == pytest.approx(solution["target"].mean(), abs=0.02)


def test_the_split_is_deterministic(workspace, source):
    local_competition.main(["--source", str(source)])
    first = (workspace / "input" / "train.csv").read_bytes()
    for f in (workspace / "input").iterdir():
        f.unlink()
    local_competition.main(["--source", str(source)])
    assert (workspace / "input" / "train.csv").read_bytes() == first


def test_an_existing_competition_is_never_overwritten(workspace, source, capsys):
    local_competition.main(["--source", str(source)])
    with pytest.raises(SystemExit):
        local_competition.main(["--source", str(source)])
    assert "already holds" in capsys.readouterr().err


def test_the_split_keeps_the_configured_text_and_extra_columns(workspace):
    config = workspace / "pipeline.toml"
    config.write_text(config.read_text().replace(
        'id = "qid"\ntext = "question_text"\ntarget = "target"\nprediction = "prediction"',
        'id = "id"\ntext = ["keyword", "text"]\ntarget = "target"\nprediction = "target"\nextra_columns = ["location"]'))
    rows = questions(40).rename(columns={"qid": "id", "question_text": "text"})
    rows = rows.assign(keyword="fire", location="", note="not configured")[["id", "keyword", "location", "text",
                                                                           "note", "target"]]
    rows.to_csv(workspace / "labelled.csv", index=False)
    local_competition.main(["--source", str(workspace / "labelled.csv")])
    header = {name: list(pd.read_csv(workspace / "input" / f"{name}.csv").columns)
              for name in ("train", "test", "sample_submission")}
    assert header == {"train": ["id", "keyword", "location", "text", "target"],
                      "test": ["id", "keyword", "location", "text"], "sample_submission": ["id", "target"]}
