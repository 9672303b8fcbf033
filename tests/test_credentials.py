"""Every credential source the kaggle CLI reads stays out of logs, manifests and the kernel folder."""
import json
import sys
from pathlib import Path

import pytest

from core import kaggle
from core.errors import PipelineError
from submit_fakes import CONFIG, full_world, setup_env
from conftest import here

SECRET = "planted-secret-0123456789"


def kaggle_home() -> Path:
    home = Path.home() / ".kaggle"            # setup_env made HOME a temporary folder
    home.mkdir(parents=True, exist_ok=True)
    return home


def plant_env_key(monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", SECRET)


def plant_kaggle_json(monkeypatch):
    (kaggle_home() / "kaggle.json").write_text(json.dumps({"username": "someone", "key": SECRET}))


def plant_api_token(monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET)


def plant_api_token_file(monkeypatch):
    path = kaggle_home() / "token-file"
    path.write_text(SECRET + "\n")
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(path))      # the CLI reads the token from a file it names


def plant_access_token(monkeypatch):
    (kaggle_home() / "access_token").write_text(SECRET + "\n")


def plant_access_token_txt(monkeypatch):
    (kaggle_home() / "access_token.txt").write_text(SECRET)


def plant_login_credentials(monkeypatch):
    (kaggle_home() / "credentials.json").write_text(json.dumps(
        {"refresh_token": SECRET, "access_token": "", "access_token_expiration": "", "username": "someone"}))


def plant_bare_token_as_login_credentials(monkeypatch):
    (kaggle_home() / "credentials.json").write_text(SECRET + "\n")          # not JSON: all of it is secret


SOURCES = [plant_env_key, plant_kaggle_json, plant_api_token, plant_api_token_file, plant_access_token,
           plant_access_token_txt, plant_login_credentials, plant_bare_token_as_login_credentials]


@pytest.fixture(params=SOURCES, ids=lambda plant: plant.__name__.removeprefix("plant_"))
def planted(request, tmp_path, monkeypatch):
    """A workspace with one credential source holding SECRET (the user name is no secret)."""
    full_world(tmp_path, monkeypatch)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    request.param(monkeypatch)
    return tmp_path


def test_cli_output_is_shown_without_the_credential(planted, monkeypatch, capfd):
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (0, f"authenticated with {SECRET}\n"))
    output = kaggle.run(["kaggle", "competitions", "list"])
    assert "***" in output and SECRET not in output + "".join(capfd.readouterr())


def test_a_failed_command_reports_without_the_credential(planted, monkeypatch):
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (1, f"401 Client Error for token {SECRET}\n"))
    with pytest.raises(PipelineError, match="401") as e:
        kaggle.run(["kaggle", "competitions", "list"])
    assert SECRET not in str(e.value)


def test_the_submission_manifest_holds_no_credential(planted):
    from submit.make_submission import make
    path = make(here(), "blend", "mean")
    assert SECRET not in path.with_suffix(".json").read_text() + path.read_text()


def test_the_kernel_folder_holds_no_credential(planted):
    from submit import kernel_bundle
    folder = kernel_bundle.write(here())
    texts = [p.read_text() for p in folder.iterdir()]
    assert texts and not any(SECRET in t or SECRET in kernel_bundle._decoded_code(t) for t in texts)


def test_a_credential_copied_into_the_project_config_keeps_the_kernel_from_being_written(planted):
    from submit import kernel_bundle
    (planted / "pipeline.toml").write_text(CONFIG + f"\n# pasted by mistake: {SECRET}\n")
    with pytest.raises(PipelineError, match="would contain a Kaggle credential"):
        kernel_bundle.write(here())
    assert not (planted / "submit" / "kernel" / "kernel.py").exists()


def test_a_credential_split_across_the_cli_output_chunks_is_still_hidden(tmp_path, monkeypatch, capfd):
    setup_env(tmp_path, monkeypatch)
    plant_env_key(monkeypatch)
    half = len(SECRET) // 2
    program = (f"import sys, time; sys.stdout.write({SECRET[:half]!r}); sys.stdout.flush(); time.sleep(0.3); "
               f"print({SECRET[half:]!r})")
    returncode, output = kaggle._execute([sys.executable, "-c", program])
    assert returncode == 0 and output.strip() == SECRET      # the caller gets it whole, to redact as a whole
    shown = capfd.readouterr().out
    assert "***" in shown and SECRET[:half] not in shown and SECRET[half:] not in shown
