"""Each bad input fed to the loader: non-zero exit, a message naming the problem, nothing written to folds/; and
the valid variants a competition file comes in, accepted with every row kept."""
import gzip
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import here, write_competition
from core.data import load_test, load_train
from core.paths import REPO
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


def test_missing_test_file_is_refused_before_any_work(competition, workspace, capsys):
    (competition / "test.csv").unlink()
    assert_refused(capsys, workspace, "test.csv: file not found", "make demo")


def test_an_empty_test_file_is_refused(competition, workspace, capsys):
    (competition / "test.csv").write_bytes(b"")
    assert_refused(capsys, workspace, "test.csv: the file is empty", "restore it")


def test_a_test_file_with_only_its_header_is_refused(competition, workspace, capsys):
    (competition / "test.csv").write_text("qid,question_text\n")
    assert_refused(capsys, workspace, "test.csv: no data rows")


def test_a_missing_test_text_names_the_row_and_id(competition, workspace, capsys):
    test = pd.read_csv(competition / "test.csv")
    test.loc[2, "question_text"] = np.nan                   # pandas writes it as an empty field
    test.to_csv(competition / "test.csv", index=False)
    assert_refused(capsys, workspace, "test.csv: empty or missing question_text in row(s) 3", "'q00062'")


def test_duplicate_test_ids_name_the_id_and_rows(competition, workspace, capsys):
    edit(competition / "test.csv", "q00061,", "q00060,")
    assert_refused(capsys, workspace, "test.csv: duplicate qid 'q00060' in rows 1, 2")


def test_an_id_in_both_train_and_test_is_refused(competition, workspace, capsys):
    edit(competition / "test.csv", "q00060,", "q00001,")
    edit(competition / "sample_submission.csv", "q00060,", "q00001,")
    assert_refused(capsys, workspace, "test.csv: 1 qid value(s) also in train.csv, e.g. 'q00001'")


def test_sample_submission_with_other_ids_is_refused_at_folds(competition, workspace, capsys):
    edit(competition / "sample_submission.csv", "q00065", "x00065")
    assert_refused(capsys, workspace, "sample_submission.csv: its qid values do not match test.csv",
                   "1 test ids missing, e.g. 'q00065'")


def test_sample_submission_in_another_order_than_test_is_refused(competition, workspace, capsys):
    edit(competition / "sample_submission.csv", "q00060,0\nq00061,0", "q00061,0\nq00060,0")
    assert_refused(capsys, workspace, "sample_submission.csv: its qid values are in another order than test.csv's",
                   "row 1 is 'q00061'")


def test_sample_submission_without_the_prediction_column_is_refused(competition, workspace, capsys):
    pd.read_csv(competition / "test.csv")[["qid"]].to_csv(competition / "sample_submission.csv", index=False)
    assert_refused(capsys, workspace, "sample_submission.csv: missing column(s) ['prediction']")


def test_a_semicolon_separated_file_names_the_delimiter_and_the_columns(competition, workspace, capsys):
    train = pd.read_csv(competition / "train.csv")
    train.to_csv(competition / "train.csv", index=False, sep=";")
    assert_refused(capsys, workspace, "train.csv: separated by ';', not commas", "'qid,question_text,target'")


def test_a_missing_header_line_names_the_expected_columns(competition, workspace, capsys):
    path = competition / "test.csv"
    path.write_text(path.read_text().split("\n", 1)[1])
    assert_refused(capsys, workspace, "test.csv: the first line is not the header", "'q00060,",
                   "'qid,question_text'")


def test_a_later_stage_refuses_a_test_file_changed_after_the_folds(competition, workspace, capsys):
    from models import train
    make_folds.main()
    edit(competition / "test.csv", "q00060,", "q00001,")
    with pytest.raises(SystemExit):
        train.main(["--model", "tfidf-lr"])
    assert "test.csv: 1 qid value(s) also in train.csv" in capsys.readouterr().err
    assert not (workspace / "models" / "tfidf-lr").exists()


def test_the_command_line_prints_the_error_without_a_traceback(competition, workspace):
    (competition / "test.csv").write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "folds.make_folds"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "test.csv: the file is empty" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_sample_submission_ids_must_match_test(competition):
    from core.data import load_sample_submission, load_test
    from core.errors import InputError
    edit(competition / "sample_submission.csv", "q00065", "x00065")
    with pytest.raises(InputError, match="sample_submission.csv: its qid values do not match test.csv"):
        load_sample_submission(here(), load_test(here()))


def test_texts_come_back_as_python_strings(competition):
    from core.data import load_train
    texts = load_train(here()).texts
    assert texts.dtype == object and isinstance(texts[0], str)


def test_the_text_na_is_a_question_not_a_missing_value(competition):
    from core.data import load_train
    edit(competition / "train.csv", "how do I fix my", "NA", )
    assert "NA" in load_train(here()).texts[1]


# ---- files that are no CSV text at all: refused by name, with the fix

def test_a_folder_in_place_of_a_file_is_refused(competition, workspace, capsys):
    (competition / "train.csv").unlink()
    (competition / "train.csv").mkdir()
    assert_refused(capsys, workspace, "train.csv: a folder, not a file")


def test_a_gzip_compressed_file_names_the_compression_and_the_fix(competition, workspace, capsys):
    path = competition / "train.csv"
    path.write_bytes(gzip.compress(path.read_bytes()))
    assert_refused(capsys, workspace, "train.csv: gzip-compressed, not a CSV text file", "unpack it")


def test_a_zip_archive_is_refused(competition, workspace, capsys):
    path = competition / "test.csv"
    with zipfile.ZipFile(competition / "test.zip", "w") as archive:
        archive.write(path, "test.csv")
    (competition / "test.zip").replace(path)
    assert_refused(capsys, workspace, "test.csv: a zip archive, not a CSV text file")


def test_binary_bytes_are_refused(competition, workspace, capsys):
    (competition / "train.csv").write_bytes(bytes(range(256)) * 4)
    assert_refused(capsys, workspace, "train.csv: binary data (NUL bytes), not a CSV text file")


def test_utf16_text_is_refused_asking_for_utf8(competition, workspace, capsys):
    path = competition / "train.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    assert_refused(capsys, workspace, "train.csv: UTF-16 text; re-save the file as UTF-8")


def test_a_repeated_column_name_is_refused_naming_it(competition, workspace, capsys):
    path = competition / "train.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",question_text"] + [line + ",x" for line in lines[1:]]) + "\n")
    assert_refused(capsys, workspace, "train.csv: the header names column(s) ['question_text'] more than once")


def test_a_file_that_cannot_be_read_names_it(competition, workspace, capsys, monkeypatch):
    def denied(path, *args, **kwargs):
        if Path(path).name == "train.csv":
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)
    monkeypatch.setattr("core.data.open", denied, raising=False)
    assert_refused(capsys, workspace, "train.csv: cannot be read (Permission denied)")


# ---- valid variants: accepted, every row kept

def test_targets_written_as_floats_are_read_as_zero_and_one(competition):
    train = pd.read_csv(competition / "train.csv")
    train.astype({"target": float}).to_csv(competition / "train.csv", index=False)       # 0.0 / 1.0
    assert "1.0" in (competition / "train.csv").read_text()
    assert list(load_train(here()).target) == list(train["target"])


def test_targets_written_as_true_and_false_are_read_as_one_and_zero(competition):
    train = pd.read_csv(competition / "train.csv")
    train.astype({"target": bool}).to_csv(competition / "train.csv", index=False)
    assert "True" in (competition / "train.csv").read_text()
    assert list(load_train(here()).target) == list(train["target"])


def quoted_newline(data: bytes) -> bytes:
    """Row q00001's text over two lines, quoted as a CSV writer quotes it."""
    return data.replace(b"q00001,how do I fix my", b'q00001,"how do I\nfix my', 1).replace(b" today?,", b' today?",', 1)


def extra_column(data: bytes) -> bytes:
    header, *rows = data.rstrip(b"\n").split(b"\n")
    return b"\n".join([header + b",source"] + [row + b",web" for row in rows]) + b"\n"


VALID_VARIANTS = {
    "bom": lambda data: b"\xef\xbb\xbf" + data,
    "crlf": lambda data: data.replace(b"\n", b"\r\n"),
    "cr-only": lambda data: data.replace(b"\n", b"\r"),
    "quoted-newline": quoted_newline,
    "extra-column": extra_column,
    "long-text": lambda data: data.replace(b"how do I", b"how " * 50_000 + b"do I", 1),    # 250,000 characters
}


@pytest.mark.parametrize("variant", VALID_VARIANTS.values(), ids=VALID_VARIANTS.keys())
def test_valid_variants_keep_every_row(competition, variant):
    path = competition / "train.csv"
    path.write_bytes(variant(path.read_bytes()))
    train = load_train(here())
    assert len(train) == 60 and list(train.ids[-2:]) == ["q00058", "q00059"] and train.target.sum() == 12


def test_a_quoted_newline_stays_inside_its_text(competition):
    path = competition / "train.csv"
    path.write_bytes(quoted_newline(path.read_bytes()))
    assert load_train(here()).texts[1].startswith("how do I\nfix my")


# ---- text from several columns: one text a row, combined in core.data, which every stage reads
TWEETS_TRAIN = """id,keyword,location,text,target
1,fire,,Forest fire near La Ronge,1
2,,Paris,All residents asked to shelter,1
3,NA,,What a goal,0
4,flood,,,1
5,,,nan,0
"""


@pytest.fixture
def tweets(workspace):
    """A competition whose text is two columns, keyword and text; rows with a missing value in either."""
    edit(workspace / "pipeline.toml", 'id = "qid"\ntext = "question_text"', 'id = "id"\ntext = ["keyword", "text"]')
    inp = workspace / "input"
    inp.mkdir()
    (inp / "train.csv").write_text(TWEETS_TRAIN)
    (inp / "test.csv").write_text("id,keyword,location,text\n6,storm,,Storm in the bay\n7,flood\n")   # 7: cut short
    (inp / "sample_submission.csv").write_text("id,prediction\n6,0\n7,0\n")
    return inp


def test_text_columns_combine_into_one_text_leaving_a_missing_value_out(tweets):
    assert list(load_train(here()).texts) == ["fire Forest fire near La Ronge", "All residents asked to shelter",
                                        "NA What a goal", "flood", "nan"]   # 'NA', 'nan' as written: texts
    assert list(load_test(here()).texts) == ["storm Storm in the bay", "flood"]


def test_a_text_template_fills_a_missing_value_with_nothing(tweets, workspace):
    edit(workspace / "pipeline.toml", 'text = ["keyword", "text"]',
         'text = ["keyword", "text"]\ntext_template = "{keyword}: {text}"')
    assert list(load_train(here()).texts) == ["fire: Forest fire near La Ronge", ": All residents asked to shelter",
                                        "NA: What a goal", "flood: ", ": nan"]
    assert list(load_test(here()).texts) == ["storm: Storm in the bay", "flood: "]


def test_a_row_with_every_text_column_empty_is_refused_naming_the_columns(tweets, workspace, capsys):
    edit(tweets / "test.csv", "6,storm,,Storm in the bay", "6,,Paris,")
    assert_refused(capsys, workspace, "test.csv: empty or missing text (every one of keyword, text) in row(s) 1",
                   "(id '6')", "fill in the text or drop the row")


def test_a_missing_text_column_is_named_with_the_fix(tweets, workspace, capsys):
    edit(tweets / "test.csv", "id,keyword,", "id,tag,")
    assert_refused(capsys, workspace, "test.csv: missing column(s) ['keyword']",
                   "set the column name in the [competition] table")
