"""core.claim: the one rule for finished work that folds, modules, models and blends share."""
import os

import pytest

from core.claim import MOVING, claim
from core.errors import PipelineError

IDENTITY = {"spec": {"lr": 0.1}, "inputs": "abc"}


def finished(folder, identity=IDENTITY):
    assert claim(folder, identity, "done.json", "Rebuild it", os.environ.get("FORCE") == "1")
    (folder / "part.npy").write_text("work")
    (folder / "done.json").write_text("{}")


def test_a_new_folder_is_claimed_and_stamped(tmp_path):
    assert claim(tmp_path / "a", IDENTITY, "done.json", "Rebuild it", os.environ.get("FORCE") == "1")
    assert (tmp_path / "a" / "stamp.json").exists()


def test_finished_work_of_the_same_identity_is_up_to_date(tmp_path, capsys):
    finished(tmp_path)
    assert not claim(tmp_path, IDENTITY, "done.json", "Rebuild it", os.environ.get("FORCE") == "1")
    assert "up to date" in capsys.readouterr().out


def test_unfinished_work_of_the_same_identity_resumes_with_its_parts(tmp_path):
    claim(tmp_path, IDENTITY, "done.json", "Rebuild it", os.environ.get("FORCE") == "1")
    (tmp_path / "part.npy").write_text("work")
    assert claim(tmp_path, IDENTITY, "done.json", "Rebuild it", os.environ.get("FORCE") == "1") and (tmp_path / "part.npy").exists()


def test_another_identity_is_refused_naming_what_changed(tmp_path, monkeypatch):
    monkeypatch.delenv("FORCE", raising=False)
    finished(tmp_path)
    with pytest.raises(PipelineError, match=r"different spec; .*Rebuild it, or set FORCE=1"):
        claim(tmp_path, {**IDENTITY, "spec": {"lr": 0.2}}, "done.json", "Rebuild it", os.environ.get("FORCE") == "1")
    assert (tmp_path / "part.npy").exists()


def test_force_rebuilds_with_the_previous_run_kept_in_previous(tmp_path, monkeypatch, capsys):
    finished(tmp_path)
    monkeypatch.setenv("FORCE", "1")
    assert claim(tmp_path, {**IDENTITY, "spec": {"lr": 0.2}}, "done.json", "Rebuild it", os.environ.get("FORCE") == "1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["previous", "stamp.json"]
    assert sorted(p.name for p in (tmp_path / "previous").iterdir()) == ["done.json", "part.npy", "stamp.json"]
    assert "moved to" in capsys.readouterr().out


def test_a_second_force_keeps_only_the_latest_previous_run(tmp_path, monkeypatch):
    finished(tmp_path)
    (tmp_path / "part.npy").write_text("first run")
    monkeypatch.setenv("FORCE", "1")
    finished(tmp_path, {**IDENTITY, "spec": {"lr": 0.2}})
    finished(tmp_path, {**IDENTITY, "spec": {"lr": 0.3}})
    previous = tmp_path / "previous"
    assert (previous / "part.npy").read_text() == "work" and not (previous / "previous").exists()
    assert '"lr": 0.2' in (previous / "stamp.json").read_text()


def test_a_rebuild_killed_while_keeping_the_previous_run_finishes_the_move_first(tmp_path, monkeypatch):
    finished(tmp_path)
    (tmp_path / MOVING).mkdir()                              # killed after moving stamp.json, before the rest
    (tmp_path / "stamp.json").rename(tmp_path / MOVING / "stamp.json")
    assert claim(tmp_path, IDENTITY, "done.json", "Rebuild it", os.environ.get("FORCE") == "1")
    assert sorted(p.name for p in (tmp_path / "previous").iterdir()) == ["done.json", "part.npy", "stamp.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["previous", "stamp.json"]


def test_changed_derived_inputs_rebuild_without_force(tmp_path, monkeypatch):
    monkeypatch.delenv("FORCE", raising=False)
    finished(tmp_path)
    assert claim(tmp_path, {**IDENTITY, "inputs": "xyz"}, "done.json", "Rebuild it", False, derived=("inputs",))
    assert not (tmp_path / "done.json").exists()


def test_finished_work_without_a_stamp_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("FORCE", raising=False)
    (tmp_path / "done.json").write_text("{}")
    with pytest.raises(PipelineError, match="unrecorded identity"):
        claim(tmp_path, IDENTITY, "done.json", "Rebuild it", os.environ.get("FORCE") == "1")


def test_a_folder_that_also_holds_code_keeps_it_and_moves_only_its_artifact(tmp_path, monkeypatch):
    finished(tmp_path)
    (tmp_path / "make_folds.py").write_text("code")
    monkeypatch.setenv("FORCE", "1")
    claim(tmp_path, {**IDENTITY, "spec": {"lr": 0.2}}, "done.json", "Rebuild it", True, clear=False)
    assert (tmp_path / "make_folds.py").exists()
    assert sorted(p.name for p in (tmp_path / "previous").iterdir()) == ["done.json", "stamp.json"]
