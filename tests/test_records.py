"""core.records: each model's and blend's metrics.json says what code, libraries, settings and devices made it."""
import json
import subprocess
from datetime import datetime, timezone
from importlib import metadata

import pytest

from conftest import here, write_competition
from core import records
from core.paths import REPO
from folds import make_folds
from models import train


@pytest.fixture
def folds_made(workspace):
    write_competition(workspace)
    make_folds.main()
    return workspace


def trained_run(root, name="tfidf-lr") -> dict:
    train.main(["--model", name])
    return json.loads((root / "models" / name / "metrics.json").read_text())["run"]


def test_a_model_records_the_commit_of_its_code(folds_made):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    code = trained_run(folds_made)["code"]
    assert code["commit"] == head.strip() and isinstance(code["dirty"], bool)


def test_a_model_records_the_library_versions(folds_made):
    versions = trained_run(folds_made)["versions"]
    assert set(versions) == set(records.PACKAGES)
    assert versions["numpy"] == metadata.version("numpy")
    assert versions["scikit-learn"] == metadata.version("scikit-learn")


def test_a_model_records_its_configuration_tables(folds_made):
    from core.config import load_config
    config = trained_run(folds_made)["config"]
    from models.catalogue import spec_of
    assert config["models.tfidf-lr"] == spec_of(here().config, "tfidf-lr").as_dict()
    assert config["competition"]["id"] == "qid" and config["folds"] == {"k": 3, "seed": 7}


def test_a_model_records_whatever_its_trainer_says_the_devices_are(folds_made, monkeypatch):
    from models.kinds.tfidf import Tfidf as TfidfTrainer
    real = TfidfTrainer.device
    monkeypatch.setattr(TfidfTrainer, "device", lambda self: {**real(self), "marked": "by this test"})
    assert trained_run(folds_made)["devices"]["marked"] == "by this test"


def test_a_model_records_when_its_run_started_and_finished_in_utc(folds_made):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    run = trained_run(folds_made)
    started, finished = datetime.fromisoformat(run["started"]), datetime.fromisoformat(run["finished"])
    assert started.utcoffset().total_seconds() == 0 and before <= started <= finished


def test_a_model_rescored_by_a_newer_schema_keeps_its_training_run_record(folds_made):
    original = trained_run(folds_made)
    path = folds_made / "models" / "tfidf-lr" / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema": 1}))
    train.main(["--model", "tfidf-lr"])
    rescored = json.loads(path.read_text())
    assert rescored["schema"] == 2 and rescored["run"] == original


def test_outside_a_git_checkout_the_commit_is_null_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "REPO", tmp_path)
    code = records.code_version()
    assert code["commit"] is None and code["dirty"] is None and "not a git checkout" in code["reason"]


def test_the_commit_label_is_short_and_says_when_the_tree_was_dirty():
    run = {"code": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True}}
    assert records.commit_label({"run": run}) == "01234567+dirty"
    assert records.commit_label({}) == ""
