"""submit.kernel: metadata the kaggle CLI accepts, exact push/submit commands, no credentials anywhere."""
import json
import os
import subprocess
import sys

import pytest

from core import kaggle
from core.errors import PipelineError
from submit_fakes import CONFIG, setup_env

FAKE_KEY = "fake-secret-key-0123456789"
MODULE_CONFIG = CONFIG.replace('members = ["alpha", "beta"]', 'members = ["alpha", "beta", "gamma"]') + """
[modules.glove-small]
builder = "pypi-glove"

[models.gamma]
handle = "glove-small"
output_dim = 50
"""


def credentials(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)


def test_written_metadata_has_the_fields_the_cli_requires(tmp_path, monkeypatch):
    from submit.kernel import metadata_problems, write
    setup_env(tmp_path, monkeypatch)
    credentials(monkeypatch)
    folder = write()
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    assert meta["id"] == "someone/fake-comp-pipeline"
    assert meta["code_file"] == "kernel.py" and (folder / "kernel.py").is_file()
    assert meta["language"] == "python" and meta["kernel_type"] == "script"
    assert meta["enable_gpu"] is True and meta["enable_internet"] is False
    assert meta["competition_sources"] == ["fake-comp"]
    assert meta["model_sources"] == ["google/universal-sentence-encoder/tensorFlow2/large/2"]
    assert metadata_problems(meta, folder) == []


def test_metadata_validation_rejects_what_kaggle_rejects(tmp_path):
    from submit.kernel import metadata_problems
    meta = {"id": "me/abc", "title": "Abc", "code_file": "missing.py", "language": "julia",
            "kernel_type": "app", "enable_internet": True, "model_sources": ["a/b/c"], "competition_sources": []}
    found = "; ".join(metadata_problems(meta, tmp_path))
    for expected in ("five characters", "code_file", "language", "kernel_type", "enable_internet",
                     "model source", "competition_sources"):
        assert expected in found


def test_owner_comes_from_the_kaggle_table(tmp_path, monkeypatch):
    from submit.kernel import write
    setup_env(tmp_path, monkeypatch, CONFIG + '\n[kaggle]\nowner = "alice"\nkernel = "quora-hub-run"\n')
    meta = json.loads((write() / "kernel-metadata.json").read_text())
    assert meta["id"] == "alice/quora-hub-run" and meta["title"] == "Quora Hub Run"


def test_missing_owner_says_where_to_set_it(tmp_path, monkeypatch):
    from submit.kernel import write
    setup_env(tmp_path, monkeypatch)
    with pytest.raises(PipelineError, match=r"\[kaggle\]"):
        write()


def test_push_builds_exact_command(tmp_path, monkeypatch, kaggle_calls):
    from submit.kernel import push, write
    setup_env(tmp_path, monkeypatch)
    credentials(monkeypatch)
    folder = write()
    push()
    assert kaggle_calls[0][1:] == ["kernels", "push", "-p", str(folder)]


def test_kernel_submit_builds_code_competition_command(tmp_path, monkeypatch, kaggle_calls):
    from submit.kernel import submit, write
    setup_env(tmp_path, monkeypatch)
    credentials(monkeypatch)
    write()
    submit(3, "kernel v3")
    assert kaggle_calls[0][1:] == ["competitions", "submit", "fake-comp", "-k", "someone/fake-comp-pipeline",
                            "-v", "3", "-f", "submission.csv", "-m", "kernel v3"]


def test_kernel_folder_and_logs_hold_no_credentials(tmp_path, monkeypatch, capfd):
    from submit import kernel
    setup_env(tmp_path, monkeypatch)
    credentials(monkeypatch)
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (0, f"pushed with {os.environ['KAGGLE_KEY']}\n"))
    kernel.main(["write"])
    kernel.main(["push"])
    kernel.main(["submit", "--version", "1", "--message", "m"])
    out, err = capfd.readouterr()
    assert FAKE_KEY not in out + err
    for path in (tmp_path / "submit").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert FAKE_KEY not in text and FAKE_KEY not in kernel._decoded_code(text), path


def test_a_key_inside_the_project_config_is_refused(tmp_path, monkeypatch):
    from submit.kernel import write
    setup_env(tmp_path, monkeypatch, CONFIG + f'\n# oops: {FAKE_KEY}\n')
    credentials(monkeypatch)
    with pytest.raises(PipelineError, match="credential"):
        write()
    assert not (tmp_path / "submit" / "kernel" / "kernel.py").exists()


def test_kernel_script_prepares_workspace_offline(tmp_path, monkeypatch):
    """Run the written script in --dry-run against a fake /kaggle tree: code, inputs, modules, handles."""
    from submit.kernel import write
    setup_env(tmp_path, monkeypatch, MODULE_CONFIG)
    credentials(monkeypatch)
    folder = write()
    kag = tmp_path / "kaggle"
    (kag / "input" / "fake-comp").mkdir(parents=True)
    (kag / "input" / "fake-comp" / "test.csv").write_text("qid,question_text\n")
    (kag / "input" / "my-modules" / "glove-small").mkdir(parents=True)
    (kag / "input" / "my-modules" / "glove-small" / "saved_model.pb").write_bytes(b"")
    (kag / "input" / "universal-sentence-encoder" / "tensorflow2" / "large" / "2").mkdir(parents=True)
    env = dict(os.environ, KERNEL_INPUT_ROOT=str(kag / "input"), KERNEL_WORKING_ROOT=str(kag / "working"),
               KERNEL_SCRATCH_ROOT=str(kag / "temp"))
    run = subprocess.run([sys.executable, str(folder / "kernel.py"), "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    work = kag / "temp" / "workspace"
    assert (work / "input" / "test.csv").exists()
    assert (work / "models" / "hub" / "glove-small" / "saved_model.pb").exists()
    assert (kag / "temp" / "pipeline" / "core" / "config.py").exists()
    config = (kag / "temp" / "pipeline" / "pipeline.toml").read_text()
    assert str(kag / "input" / "universal-sentence-encoder" / "tensorflow2" / "large" / "2") in config
    assert "models.train --model gamma" in run.stdout and "submit.make_submission --blend mean" in run.stdout


def test_kernel_script_names_a_module_that_is_not_attached(tmp_path, monkeypatch):
    from submit.kernel import write
    setup_env(tmp_path, monkeypatch, MODULE_CONFIG)
    credentials(monkeypatch)
    folder = write()
    kag = tmp_path / "kaggle"
    (kag / "input" / "fake-comp").mkdir(parents=True)
    (kag / "input" / "fake-comp" / "test.csv").write_text("qid,question_text\n")
    env = dict(os.environ, KERNEL_INPUT_ROOT=str(kag / "input"), KERNEL_WORKING_ROOT=str(kag / "working"),
               KERNEL_SCRATCH_ROOT=str(kag / "temp"))
    run = subprocess.run([sys.executable, str(folder / "kernel.py"), "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "glove-small" in run.stderr and "dataset_sources" in run.stderr
