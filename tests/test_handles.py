import pytest

from conftest import here, write_vectors
from core.config import load_config
from core.errors import PipelineError
from models.handles import hub_layers, resolve_handles


def spec_with(handle):
    from dataclasses import replace
    from models.catalogue import spec_of
    cfg = here().config
    spec = spec_of(cfg, "tiny-frozen")
    return replace(spec, options=replace(spec.options, handle=handle)), cfg


def test_an_online_handle_offline_gives_one_clear_error(workspace, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(workspace / "cache"))
    spec, cfg = spec_with("https://tfhub.dev/google/nnlm-en-dim50-with-normalization/2")
    try:
        resolve_handles(spec, here())
    except PipelineError as e:
        message = str(e)
    else:
        pytest.skip("this machine reached tfhub.dev")
    assert "cannot download https://tfhub.dev/google/nnlm-en-dim50-with-normalization/2" in message
    assert "offline" in message and 'handle = "path/to/folder"' in message


def test_a_module_not_built_yet_says_make_modules(workspace):
    spec, cfg = spec_with("tiny")
    with pytest.raises(PipelineError, match="module 'tiny' is not built yet; run `make modules`"):
        resolve_handles(spec, here())


def test_a_path_that_is_not_a_savedmodel_is_named(workspace):
    spec, cfg = spec_with("somewhere/else")
    with pytest.raises(PipelineError, match="is not a SavedModel folder"):
        resolve_handles(spec, here())


def test_a_built_module_becomes_a_keras_layer_with_the_entry_trainability(workspace):
    from models.modules.build import main as build_modules
    write_vectors(workspace / "vectors.txt")
    build_modules([])
    spec, cfg = spec_with("tiny")
    [layer] = hub_layers(spec, here(), trainable=False)
    assert layer.trainable is False and layer(__import__("tensorflow").constant(["why"])).shape == (1, 4)


def test_a_list_of_handles_gives_a_layer_for_each(workspace):
    from models.modules.build import main as build_modules
    write_vectors(workspace / "vectors.txt")
    build_modules([])
    spec, cfg = spec_with(("tiny", "tiny"))
    assert [layer.name for layer in hub_layers(spec, here(), trainable=False)] == ["module", "module1"]
