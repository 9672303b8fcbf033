"""core.kaggle, submit.kaggle_cli and input.download: exact command lines and error paths, never calling Kaggle."""
import json
import zipfile

import pandas as pd
import pytest

from core import kaggle
from core.errors import PipelineError
from submit_fakes import full_world, setup_env
from conftest import here

FAKE_KEY = "fake-secret-key-0123456789"


def with_env_credentials(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)


def test_no_credentials_error_names_variables_and_file(tmp_path, monkeypatch, kaggle_calls):
    setup_env(tmp_path, monkeypatch)
    with pytest.raises(PipelineError) as e:
        kaggle.run(["kaggle", "competitions", "submissions", "fake-comp"])
    message = str(e.value)
    assert "KAGGLE_USERNAME" in message and "KAGGLE_KEY" in message and "kaggle.json" in message
    assert "KAGGLE_API_TOKEN" in message
    assert kaggle_calls == []


def test_kaggle_json_in_config_dir_counts_as_credentials(tmp_path, monkeypatch):
    setup_env(tmp_path, monkeypatch)
    (tmp_path / "cfgdir").mkdir()
    (tmp_path / "cfgdir" / "kaggle.json").write_text(json.dumps({"username": "u", "key": FAKE_KEY}))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "cfgdir"))
    assert kaggle.credentials_source().endswith("kaggle.json")


def test_access_token_file_counts_as_credentials(tmp_path, monkeypatch):
    setup_env(tmp_path, monkeypatch)
    (tmp_path / "home" / ".kaggle").mkdir(parents=True)
    (tmp_path / "home" / ".kaggle" / "access_token").write_text("tok")
    assert kaggle.credentials_source() == "~/.kaggle/access_token"


def test_file_submit_builds_exact_command(tmp_path, monkeypatch, kaggle_calls):
    from submit.kaggle_cli import submit
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    path = make(here(), "blend", "mean")
    submit(here(), "mean", "first try")
    assert kaggle_calls[0][1:] == ["competitions", "submit", "fake-comp", "-f", str(path), "-m", "first try"]


def test_status_builds_exact_command(tmp_path, monkeypatch, kaggle_calls):
    from submit.kaggle_cli import status
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    status(here())
    assert kaggle_calls[0][1:] == ["competitions", "submissions", "fake-comp"]


def test_code_competition_refuses_file_submission(tmp_path, monkeypatch, kaggle_calls):
    from submit.kaggle_cli import submit
    full_world(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(cfg.read_text() + "\n[kaggle]\ncode_competition = true\n")
    with pytest.raises(PipelineError, match="make kernel"):
        submit(here(), "mean", "x")
    assert kaggle_calls == []


def test_edited_submission_file_is_refused_before_sending(tmp_path, monkeypatch, kaggle_calls):
    from submit.kaggle_cli import submit
    from submit.make_submission import make
    full_world(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    path = make(here(), "blend", "mean")
    table = pd.read_csv(path, dtype=str)
    table.iloc[3, 1] = "0.5"
    table.to_csv(path, index=False)
    with pytest.raises(PipelineError, match="0 or 1"):
        submit(here(), "mean", "x")
    assert kaggle_calls == []


def test_dns_failure_is_a_network_error_run_once(tmp_path, monkeypatch):
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    seen = []
    out = "requests.exceptions.ConnectionError: NameResolutionError: Failed to resolve 'api.kaggle.com'"
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (seen.append(argv), (1, out))[1])
    with pytest.raises(PipelineError, match="could not reach kaggle.com"):
        kaggle.run(["kaggle", "competitions", "submissions", "fake-comp"])
    assert len(seen) == 1


def test_http_403_says_accept_the_rules(tmp_path, monkeypatch):
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (1, "403 Client Error: Forbidden for url: https://..."))
    with pytest.raises(PipelineError, match="rules"):
        kaggle.run(["kaggle", "competitions", "download", "-c", "fake-comp"])


def test_not_found_printed_with_exit_zero_is_still_a_failure(tmp_path, monkeypatch):
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (0, "Could not find competition - please verify"))
    with pytest.raises(PipelineError, match="404"):
        kaggle.run(["kaggle", "competitions", "submit", "fake-comp", "-f", "x.csv", "-m", "m"])


def test_key_in_cli_output_is_redacted_from_errors(tmp_path, monkeypatch):
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (1, f"boom key={FAKE_KEY}"))
    with pytest.raises(PipelineError) as e:
        kaggle.run(["kaggle", "competitions", "submissions", "fake-comp"])
    assert FAKE_KEY not in str(e.value) and "***" in str(e.value)


def test_installed_cli_without_network_is_a_clear_error_without_the_key(tmp_path, monkeypatch, capfd):
    """The installed CLI itself, fake credentials, and its network stubbed: every request goes to a closed local port."""
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(PipelineError, match="could not reach kaggle.com") as e:
        kaggle.run(["kaggle", "competitions", "submissions", "fake-comp"])
    out, err = capfd.readouterr()
    assert FAKE_KEY not in str(e.value) + out + err


def test_http_401_says_replace_the_token(tmp_path, monkeypatch):
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (1, "401 Client Error: Unauthorized for url: "
                                                              "https://www.kaggle.com/api/v1/competitions/..."))
    with pytest.raises(PipelineError, match="401 Unauthorized.*new API token"):
        kaggle.run(["kaggle", "competitions", "submissions", "fake-comp"])


def test_download_builds_exact_command_and_unzips(tmp_path, monkeypatch):
    from input.download import download
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    seen = []

    def fake_kaggle(argv):  # what the CLI would leave behind: the competition zip, holding a nested zip
        seen.append(argv)
        inner = tmp_path / "emb.zip"
        with zipfile.ZipFile(inner, "w") as z:
            z.writestr("glove/vectors.txt", "a 0.1\n")
        with zipfile.ZipFile(tmp_path / "input" / "fake-comp.zip", "w") as z:
            for name in ("train.csv", "test.csv", "sample_submission.csv"):
                z.writestr(name, "qid\n")
            z.write(inner, "embeddings.zip")
        return 0, "Downloading fake-comp.zip\n"
    monkeypatch.setattr(kaggle, "_execute", fake_kaggle)
    folder = download(here())
    assert seen[0][1:] == ["competitions", "download", "-c", "fake-comp", "-p", str(tmp_path / "input")]
    assert (folder / "train.csv").exists()
    assert (folder / "embeddings" / "glove" / "vectors.txt").exists()


def test_download_without_credentials_names_offline_alternatives(tmp_path, monkeypatch, kaggle_calls):
    from input.download import download
    setup_env(tmp_path, monkeypatch)
    with pytest.raises(PipelineError) as e:
        download(here())
    assert "make demo" in str(e.value) and "make local-competition SOURCE=" in str(e.value)


def test_download_offline_names_offline_alternatives(tmp_path, monkeypatch):
    from input.download import download
    setup_env(tmp_path, monkeypatch)
    with_env_credentials(monkeypatch)
    monkeypatch.setattr(kaggle, "_execute", lambda argv: (1, "Max retries exceeded with url (Temporary failure "
                                                              "in name resolution)"))
    with pytest.raises(PipelineError) as e:
        download(here())
    assert "could not reach" in str(e.value) and "make demo" in str(e.value)


def test_unzip_refuses_members_outside_the_folder(tmp_path):
    from input.download import unzip
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../escape.txt", "x")
    with pytest.raises(PipelineError, match="outside"):
        unzip(archive, tmp_path / "into")
    assert not (tmp_path / "escape.txt").exists()
