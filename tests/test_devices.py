"""models.devices and the GPU path on a CPU: DEVICES=cpu:2 runs every training path under MirroredStrategy."""
import json
import platform
import subprocess
import sys

import numpy as np
import pytest

from conftest import EVERY_KIND, every_kind_workspace, here, run_stage, write_vectors
from core.errors import PipelineError
from core.paths import REPO
from models.devices import describe, parse_devices, parse_precision


def test_devices_are_tensorflows_choice_unless_asked():
    assert parse_devices("") == (None, None)
    assert parse_devices("cpu:2") == ("CPU", 2) and parse_devices("gpu") == ("GPU", None)


@pytest.mark.parametrize("wrong", ["tpu", "cpu:0", "cpu:two"])
def test_an_unknown_device_setting_is_refused_naming_the_choices(wrong):
    with pytest.raises(PipelineError, match="use cpu, cpu:N"):
        parse_devices(wrong)


def test_precision_defaults_to_mixed_float16_on_gpus_and_float32_on_a_cpu_without_bfloat16_units(tmp_path,
                                                                                                  monkeypatch):
    from models import devices
    (tmp_path / "cpuinfo").write_text("model name\t: AMD EPYC 7R13\nflags\t\t: fpu avx2 fma\n")
    monkeypatch.setattr(devices, "CPUINFO", tmp_path / "cpuinfo")
    assert parse_precision("", "GPU", tmp_path) == "mixed_float16"
    assert parse_precision("", "CPU", tmp_path) == "float32"
    with pytest.raises(PipelineError, match="mixed_float16, mixed_bfloat16, float32"):
        parse_precision("half", "CPU", tmp_path)


def test_a_device_record_reads_as_words():
    record = {"kind": "GPU", "strategy": "MirroredStrategy", "replicas": 2, "precision": "mixed_float16"}
    assert describe(record) == "2 GPUs under MirroredStrategy, mixed_float16"


# minor page faults of 50 blocks of 2 MiB allocated, written and freed after a generator dataset's first use
# (where TensorFlow pins malloc's mmap threshold at 128 KiB, once a process); with argument "set-up", devices(here())
# set up before it
REUSE_PROBE = """
import ctypes, resource, sys
import tensorflow as tf
from core.run import Run
from models.devices import devices
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1:] == ["set-up"]:
    devices(Run.from_environment())
list(tf.data.Dataset.from_generator(lambda: iter([1.0]), output_signature=tf.TensorSpec([], tf.float32)))
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    block = libc.malloc(2 << 20)
    ctypes.memset(block, 1, 2 << 20)
    libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def page_faults(*args: str) -> int:
    out = subprocess.run([sys.executable, "-c", REUSE_PROBE, *args], cwd=REPO, capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc thresholds only")
def test_device_set_up_has_malloc_reuse_freed_buffers_even_after_tensorflows_generator_patch():
    without, set_up = page_faults(), page_faults("set-up")
    assert without >= 50 * 256 and set_up < without / 20     # 512 pages a block mapped afresh; the heap's reused


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_mpnet, every_kind):
    """The small competition (2 folds) trained on two logical CPU devices in mixed precision, beside the shared
    one trained on one device in float32. Returns {setting: workspace}."""
    root = every_kind_workspace(tmp_path_factory.mktemp("mirrored"), tiny_mpnet)
    run_stage(root, "models.train", *[a for m in EVERY_KIND for a in ("--model", m)], DEVICES="cpu:2",
              PRECISION="mixed_float16")
    return {"mirrored": root, "single": every_kind}


@pytest.mark.parametrize("name", EVERY_KIND[1:])
def test_metrics_record_the_strategy_replicas_and_precision(trained, name):
    devices = json.loads((trained["mirrored"] / "models" / name / "metrics.json").read_text())["devices"]
    assert (devices["strategy"], devices["replicas"], devices["precision"]) == ("MirroredStrategy", 2, "mixed_float16")


@pytest.mark.parametrize("name", EVERY_KIND)
def test_two_replicas_in_mixed_precision_predict_like_one_device_in_float32(trained, name):
    mirrored, single = (np.load(trained[s] / "models" / name / "oof.npy") for s in ("mirrored", "single"))
    assert np.isfinite(mirrored).all() and mirrored.shape == single.shape == (60,)
    np.testing.assert_allclose(mirrored, single, atol=0.02)     # measured: at most 0.0014 apart


def test_fine_tuning_scales_the_loss_and_moves_the_module_under_mixed_float16(workspace):
    import tensorflow as tf
    import tf_keras as keras
    from core.config import load_config
    from models.handles import hub_layers
    from models.networks import module_model
    from models.modules.build import main as build_modules
    write_vectors(workspace / "vectors.txt")
    build_modules([])
    from models.catalogue import spec_of
    spec = spec_of(here().config, "tiny-tuned")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layers = hub_layers(spec, here(), trainable=True)
        model = module_model(spec.options, layers, steps_per_epoch=1)
        before = [v.numpy().copy() for v in layers[0].trainable_variables]
        model.fit(tf.constant(["why is it silly?", "how do I fix it?"] * 4), np.array([1.0, 0.0] * 4), epochs=1,
                  verbose=0)
        after = [v.numpy() for v in layers[0].trainable_variables]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert isinstance(model.module_optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert any(np.isfinite(a).all() and not np.array_equal(b, a) for b, a in zip(before, after))
