"""The precision follows the CPU: mixed_bfloat16 where it has bfloat16 units that pay (flags + a cached measured
check), float32 elsewhere, mixed_float16 on GPUs; PRECISION forces; every fold records it and a resumed model
never mixes precisions."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.errors import PipelineError
from models import devices, train
from conftest import artifacts
from conftest import here

GENOA = "model name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
MILAN = "model name\t: AMD EPYC 7R13\nflags\t\t: fpu avx2 fma\n"
SAPPHIRE = "model name\t: Intel(R) Xeon(R) Platinum 8488C\nflags\t\t: avx512f avx512_bf16 amx_bf16 amx_tile\n"


@pytest.fixture
def cpu(tmp_path, monkeypatch):
    """Set the CPU that /proc/cpuinfo describes and the bfloat16 speed-up a measurement would find; returns the
    list of measurements taken."""
    monkeypatch.setenv("PIPELINE_MACHINE_CACHE", str(tmp_path / "machine"))
    measured = []

    def use(cpuinfo: str, speedup: float = 2.0):
        (tmp_path / "cpuinfo").write_text(cpuinfo)
        monkeypatch.setattr(devices, "CPUINFO", tmp_path / "cpuinfo")
        monkeypatch.setattr(devices, "measure_bf16_speedup", lambda: measured.append(speedup) or speedup)
        return measured
    return use


def test_a_cpu_without_bfloat16_flags_gets_float32_and_is_told_why(cpu):
    measured = cpu(MILAN)
    precision, why = devices.default_precision("CPU", here().machine_cache)
    assert precision == "float32" and "AMD EPYC 7R13 lists no avx512_bf16 or amx_bf16" in why
    assert measured == []                                    # no flags: nothing to measure


@pytest.mark.parametrize("cpuinfo, flags", [(GENOA, "avx512_bf16"), (SAPPHIRE, "avx512_bf16, amx_bf16")])
def test_bfloat16_flags_and_a_measured_speedup_give_mixed_bfloat16(cpu, cpuinfo, flags):
    cpu(cpuinfo, speedup=2.1)
    precision, why = devices.default_precision("CPU", here().machine_cache)
    assert precision == "mixed_bfloat16" and f"lists {flags}" in why and "2.10x float32" in why


def test_flags_whose_units_do_not_pay_keep_float32(cpu):
    cpu(GENOA, speedup=0.97)
    precision, why = devices.default_precision("CPU", here().machine_cache)
    assert precision == "float32" and "0.97x" in why and "under 1.2x" in why


def test_the_check_is_measured_once_per_machine_and_cached(cpu, tmp_path):
    measured = cpu(GENOA, speedup=1.8)
    assert [devices.default_precision("CPU", here().machine_cache)[0] for _ in range(3)] == ["mixed_bfloat16"] * 3
    assert measured == [1.8]
    [entry] = json.loads((tmp_path / "machine" / "bf16-check.json").read_text()).values()
    assert entry["cpu"] == "AMD EPYC 9R14" and entry["speedup"] == 1.8


def test_precision_set_by_hand_wins_and_gpus_default_to_float16(cpu):
    cpu(GENOA, speedup=2.0)
    cache = here().machine_cache
    assert devices.parse_precision("float32", "CPU", cache) == "float32"
    assert devices.parse_precision("", "CPU", cache) == "mixed_bfloat16"
    assert devices.parse_precision("", "GPU", cache) == "mixed_float16"
    with pytest.raises(PipelineError, match="mixed_float16, mixed_bfloat16, float32"):
        devices.parse_precision("half", "CPU", cache)


def test_a_real_measurement_compares_the_two_precisions():
    speedup = devices.measure_bf16_speedup(repeats=1)
    assert np.isfinite(speedup) and speedup > 0


def test_every_fold_and_the_model_record_the_precision_it_ran_in(ready, monkeypatch):
    monkeypatch.setenv("PRECISION", "mixed_bfloat16")
    devices._set_up.cache_clear()
    try:
        train.main(["--model", "tiny-tuned"])
    finally:
        devices._set_up.cache_clear()
    _, _, metrics = artifacts(ready, "tiny-tuned")
    assert metrics["devices"]["precision"] == "mixed_bfloat16"
    assert {f["precision"] for f in metrics["folds"]} == {"mixed_bfloat16"}


def test_a_resumed_model_refuses_to_train_its_other_folds_in_another_precision(ready, capsys):
    train.main(["--model", "tiny-frozen"])
    out = ready / "models" / "tiny-frozen"
    for fold in ("fold0", "fold1"):                                   # as if trained on a CPU with bfloat16
        done = json.loads((out / fold / "done.json").read_text())
        (out / fold / "done.json").write_text(json.dumps({**done, "precision": "mixed_bfloat16"}))
    (out / "metrics.json").unlink()                                   # as if killed before the end
    shutil.rmtree(out / "fold2")
    with pytest.raises(SystemExit):
        train.main(["--model", "tiny-frozen"])
    err = capsys.readouterr().err
    assert "trained in mixed_bfloat16, and this run would train the rest in float32" in err
    assert "PRECISION=mixed_bfloat16 make train" in err and "make clean-model MODEL=tiny-frozen" in err
