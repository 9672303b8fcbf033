"""Each bad input fed to the loader: non-zero exit, a message naming the problem, nothing written to folds/."""
import pytest

from conftest import write_competition
from folds import make_folds


def run_folds(capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        make_folds.main()
    assert exit_.value.code == 2
    return capsys.readouterr().err


def edit(path, old, new):
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.fixture
def competition(workspace):
    write_competition(workspace)
    return workspace / "input"


def assert_refused(capsys, workspace, *expected):
    message = run_folds(capsys)
    for part in expected:
        assert part in message
    assert "Traceback" not in message
    assert not (workspace / "folds").exists()


def test_missing_train_file_says_how_to_get_a_competition(workspace, capsys):
    assert_refused(capsys, workspace, "train.csv: file not found", "make demo", "make local-competition")


def test_renamed_column_names_the_column_and_the_fix(competition, workspace, capsys):
    edit(competition / "train.csv", "question_text", "question")
    assert_refused(capsys, workspace, "missing column(s) ['question_text']", "rename the column")


def test_empty_text_names_the_row_and_id(competition, workspace, capsys):
    edit(competition / "train.csv", "q00003,how do I fix my", "q00003,\nq99999,how")
    assert_refused(capsys, workspace, "empty or missing question_text in row(s) 4", "'q00003'")


def test_duplicate_ids_name_the_id_and_rows(competition, workspace, capsys):
    edit(competition / "train.csv", "q00002,", "q00001,")
    assert_refused(capsys, workspace, "duplicate qid 'q00001' in rows 2, 3")


def test_target_outside_zero_one_names_the_value(competition, workspace, capsys):
    lines = (competition / "train.csv").read_text().splitlines()
    lines[3] = lines[3][:-1] + "2"
    (competition / "train.csv").write_text("\n".join(lines) + "\n")
    assert_refused(capsys, workspace, "target must be 0 or 1, found '2' in row(s) 3")


def test_undecodable_bytes_name_the_line(competition, workspace, capsys):
    path = competition / "train.csv"
    path.write_bytes(path.read_bytes().replace(b"q00005,", b"q00005,\xff\xfe", 1))
    assert_refused(capsys, workspace, "line 7", "not valid UTF-8")


def test_sample_submission_ids_must_match_test(competition):
    from core.data import load_sample_submission, load_test
    from core.errors import InputError
    edit(competition / "sample_submission.csv", "q00065", "x00065")
    with pytest.raises(InputError, match="sample_submission.csv: its qid values do not match test.csv"):
        load_sample_submission(load_test())


def test_texts_come_back_as_python_strings(competition):
    from core.data import load_train
    texts = load_train().texts
    assert texts.dtype == object and isinstance(texts[0], str)


def test_the_text_na_is_a_question_not_a_missing_value(competition):
    from core.data import load_train
    edit(competition / "train.csv", "how do I fix my", "NA", )
    assert "NA" in load_train().texts[1]
