"""One device setting for everything that trains: which devices, which distribution strategy, which precision.

    DEVICES    unset: what TensorFlow lists (every GPU it sees, else the CPU)
               cpu: the CPU; cpu:N: the CPU split into N logical devices under MirroredStrategy, as N GPUs
               would be (so the multi-device path runs, and is tested, on any machine); gpu / gpu:N: the
               GPUs TensorFlow sees, or the first N
    PRECISION  mixed_float16 | mixed_bfloat16 | float32; default mixed_float16 on GPUs, float32 on CPU

More than one device trains under MirroredStrategy (a Kaggle kernel has two T4s). On GPUs: memory growth
(TensorFlow otherwise grabs all memory at start) and XLA for heads on cached embeddings (string ops in a
module cannot be compiled). A SavedModel module keeps the dtype it was saved with; the head computes in
the policy's dtype. `python -m models.devices` (make doctor) says what TensorFlow sees, and why not a GPU.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from core.cli import entry_point
from core.errors import PipelineError

PRECISIONS = ("mixed_float16", "mixed_bfloat16", "float32")
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


@dataclass(frozen=True)
class Devices:
    kind: str                 # "GPU" or "CPU"
    names: tuple[str, ...]    # the logical devices a step runs on
    strategy: object          # tf.distribute.Strategy
    precision: str            # the Keras mixed-precision policy

    @property
    def replicas(self) -> int:
        return len(self.names)

    @property
    def xla(self) -> bool:
        return self.kind == "GPU"

    @property
    def strategy_name(self) -> str:
        name = type(self.strategy).__name__
        return "default" if name.startswith("_Default") else name

    def record(self) -> dict:
        """What metrics.json keeps: e.g. {"strategy": "MirroredStrategy", "replicas": 2, "precision": ...}."""
        return {"kind": self.kind, "strategy": self.strategy_name, "replicas": self.replicas,
                "precision": self.precision, "devices": list(self.names)}

    def describe(self) -> str:
        return describe(self.record())


def describe(record: dict) -> str:
    """A device record in words: "CPU, float32", "2 GPUs under MirroredStrategy, mixed_float16"."""
    where = f"{record['replicas']} {record['kind']}s under {record['strategy']}" if record["replicas"] > 1 \
        else record["kind"]
    return f"{where}, {record['precision']}"


def parse_devices(text: str) -> tuple[str | None, int | None]:
    """DEVICES as (kind, count): (None, None) for TensorFlow's choice; count None for every device of the kind."""
    text = text.strip().lower()
    if not text:
        return None, None
    kind, _, count = text.partition(":")
    if kind not in ("cpu", "gpu") or (count and (not count.isdigit() or int(count) < 1)):
        raise PipelineError(f"DEVICES={text!r}: use cpu, cpu:N (N logical CPU devices), gpu or gpu:N, "
                            f"or leave it unset for what TensorFlow lists")
    return kind.upper(), int(count) if count else None


def parse_precision(text: str, kind: str) -> str:
    precision = text.strip() or ("mixed_float16" if kind == "GPU" else "float32")
    if precision not in PRECISIONS:
        raise PipelineError(f"PRECISION={precision!r}: use one of {', '.join(PRECISIONS)}")
    return precision


@lru_cache(maxsize=1)
def devices() -> Devices:
    """The devices of this process, set up once: call it before TensorFlow runs anything (it fixes its
    devices at first use)."""
    import tensorflow as tf
    import tf_keras as keras
    kind, count = parse_devices(os.environ.get("DEVICES", ""))
    gpus = tf.config.list_physical_devices("GPU")
    if kind == "GPU" and not gpus:
        raise PipelineError(f"DEVICES={os.environ['DEVICES']} but TensorFlow sees no GPU: {why_no_gpu()}")
    kind = kind or ("GPU" if gpus else "CPU")
    names = _gpus(gpus, count) if kind == "GPU" else _cpus(gpus, count)
    if len(names) > 1:
        reduce = tf.distribute.ReductionToOneDevice() if kind == "CPU" else None   # NCCL is for GPUs only
        strategy = tf.distribute.MirroredStrategy(list(names), cross_device_ops=reduce)
    else:
        strategy = tf.distribute.get_strategy()
    precision = parse_precision(os.environ.get("PRECISION", ""), kind)
    keras.mixed_precision.set_global_policy(precision)
    return Devices(kind, names, strategy, precision)


def _gpus(gpus: list, count: int | None) -> tuple[str, ...]:
    import tensorflow as tf
    chosen = gpus[:count] if count else gpus
    try:
        tf.config.set_visible_devices(chosen, "GPU")
        for gpu in chosen:
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:             # TensorFlow already started: it keeps the devices it has
        pass
    return tuple(d.name for d in tf.config.list_logical_devices("GPU"))[:len(chosen)]


def _cpus(gpus: list, count: int | None) -> tuple[str, ...]:
    import tensorflow as tf
    try:
        if gpus:
            tf.config.set_visible_devices([], "GPU")
        if count and count > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:             # TensorFlow already started: fine if it already has what was asked for
        pass
    names = tuple(d.name for d in tf.config.list_logical_devices("CPU"))
    if count and len(names) != count:
        raise PipelineError(f"DEVICES=cpu:{count} needs TensorFlow's devices set before it starts; it already "
                            f"runs on {len(names)} CPU device(s). Set DEVICES in the command's environment")
    return names


def why_no_gpu() -> str:
    """Why TensorFlow sees no GPU here, in words a user can act on."""
    import tensorflow as tf
    if not NVIDIA_DRIVER.exists():
        return "no NVIDIA driver on this machine (/proc/driver/nvidia absent)"
    if not tf.test.is_built_with_cuda():
        return "an NVIDIA driver is present but this TensorFlow was built without CUDA"
    return ("an NVIDIA driver is present but TensorFlow finds no CUDA libraries: install the CUDA-enabled "
            "build of the pinned TensorFlow with `make setup GPU=1` (tensorflow[and-cuda])")


def doctor() -> str:
    """One paragraph: TensorFlow's build, what it sees, what a training run here would use."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    lines = [f"TensorFlow {tf.__version__} ({'with' if tf.test.is_built_with_cuda() else 'without'} CUDA), "
             f"sees {len(gpus)} GPU(s){': ' + ', '.join(g.name for g in gpus) if gpus else ''}"]
    if not gpus:
        lines.append(f"no GPU: {why_no_gpu()}")
    chosen = f"DEVICES={os.environ.get('DEVICES') or 'unset'}, PRECISION={os.environ.get('PRECISION') or 'default'}"
    lines.append(f"training here: {devices().describe()} ({chosen})")
    return "\n".join(lines)


@entry_point
def main() -> None:
    print(doctor() if "--line" not in sys.argv else "devices: " + devices().describe(), flush=True)


if __name__ == "__main__":
    main()
