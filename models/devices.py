"""One device setting for everything that trains: which devices, which distribution strategy, which precision.

    DEVICES    unset: what TensorFlow lists (every GPU it sees, else the CPU)
               cpu: the CPU; cpu:N: the CPU split into N logical devices under MirroredStrategy, as N GPUs
               would be (so the multi-device path runs, and is tested, on any machine); gpu / gpu:N: the
               GPUs TensorFlow sees, or the first N
    PRECISION  mixed_float16 | mixed_bfloat16 | float32; default mixed_float16 on GPUs; on a CPU
               mixed_bfloat16 where it has bfloat16 units (avx512_bf16 or amx_bf16 among its flags, confirmed
               by a short matmul check, measured once per machine and cached), else float32

More than one device trains under MirroredStrategy (a Kaggle kernel has two T4s). On GPUs: memory growth
(TensorFlow otherwise grabs all memory at start) and XLA for heads on cached embeddings (string ops in a
module cannot be compiled; on a CPU, XLA would not reach oneDNN's bfloat16 kernels either). The head computes
in the policy's dtype; the project's modules take the precision at call time (`Devices.compute_dtype`):
bfloat16 under mixed_bfloat16, else float32. `python -m models.devices` (make doctor) says what TensorFlow
sees, why not a GPU, and which precision a CPU gets and why. Set-up also has glibc's malloc keep freed tensor
buffers for reuse (`reuse_freed_buffers`).
"""
from __future__ import annotations

import ctypes
import hashlib
import platform
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from core.artifacts import read_json, write_json
from core.cli import entry_point
from core.errors import PipelineError
from core.run import Run
from models.precision import PRECISIONS, compute_dtype

NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")
CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")   # the x86 flags of bfloat16 arithmetic units (AVX-512 BF16, AMX)
MIN_BF16_SPEEDUP = 1.2                     # a bfloat16 matmul must beat float32 by this much to be the default
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt options (malloc.h)
MALLOC_THRESHOLDS = {M_MMAP_THRESHOLD: 32 << 20,   # blocks up to 32 MiB from the heap (glibc's own ceiling)
                     M_TRIM_THRESHOLD: 1 << 30}    # and the heap handed back to the kernel only past 1 GiB free


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
    def compute_dtype(self) -> str:
        """What the project's modules compute in (models.precision)."""
        return compute_dtype(self.precision)

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


def parse_precision(text: str, kind: str, machine_cache: Path) -> str:
    """PRECISION, or the default for the device kind (default_precision)."""
    precision = text.strip() or default_precision(kind, machine_cache)[0]
    if precision not in PRECISIONS:
        raise PipelineError(f"PRECISION={precision!r}: use one of {', '.join(PRECISIONS)}")
    return precision


def default_precision(kind: str, machine_cache: Path) -> tuple[str, str]:
    """(the default precision on this kind of device, why, in words)."""
    if kind == "GPU":
        return "mixed_float16", "GPUs compute float16 on their tensor cores"
    model, flags = cpu_flags()
    found = [f for f in BF16_FLAGS if f in flags]
    if not found:
        return "float32", f"{model or 'this CPU'} lists no {' or '.join(BF16_FLAGS)} among its flags"
    speedup = bf16_speedup(model, flags, machine_cache)
    measured = (f"a bfloat16 matmul ran {speedup:.2f}x float32 here (measured once, cached in "
                f"{bf16_check_file(machine_cache)})")
    if speedup < MIN_BF16_SPEEDUP:
        return "float32", f"{model} lists {', '.join(found)}, but {measured}, under {MIN_BF16_SPEEDUP}x"
    return "mixed_bfloat16", f"{model} lists {', '.join(found)} and {measured}"


def cpu_flags() -> tuple[str, frozenset[str]]:
    """(the CPU's model name, its flags) from /proc/cpuinfo; ("", empty) where there is none."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return "", frozenset()
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", ""), frozenset(fields.get("flags", "").split())


def bf16_check_file(machine_cache: Path) -> Path:
    return Path(machine_cache) / "bf16-check.json"


def tensorflow_version() -> str:
    """The installed TensorFlow's version, from its metadata: asking needs no import (seconds) of TensorFlow."""
    from importlib import metadata
    return metadata.version("tensorflow")


def bf16_speedup(model: str, flags: frozenset[str], machine_cache: Path) -> float:
    """float32 matmul time over bfloat16's on this machine: measured once per CPU model, flags and TensorFlow
    version, then read from the machine's cache."""
    version = tensorflow_version()
    key = hashlib.sha256(f"{model}|{' '.join(sorted(flags))}|{version}".encode()).hexdigest()[:16]
    path = bf16_check_file(machine_cache)
    try:
        known = read_json(path) if path.exists() else {}
    except PipelineError:            # a damaged cache is measured again, never used
        known = {}
    if not isinstance(known.get(key), dict) or not isinstance(known[key].get("speedup"), (int, float)):
        known[key] = {"cpu": model, "tensorflow": version, "speedup": measure_bf16_speedup(),
                      "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_json(path, known)
    return float(known[key]["speedup"])


def measure_bf16_speedup(repeats: int = 5) -> float:
    """A [1024, 768] @ [768, 3072] matmul (a transformer's feed-forward shape) in float32 and in bfloat16, the
    best of `repeats` interleaved timings of each; about a second."""
    import tensorflow as tf
    a, b = tf.random.normal([1024, 768]), tf.random.normal([768, 3072])
    best = {}
    for _ in range(repeats):
        for dtype in (tf.float32, tf.bfloat16):
            x, y = tf.cast(a, dtype), tf.cast(b, dtype)
            tf.matmul(x, y).numpy()                        # the kernel chosen and warm
            start = time.perf_counter()
            for _ in range(3):
                tf.matmul(x, y).numpy()
            best[dtype] = min(best.get(dtype, float("inf")), time.perf_counter() - start)
    return best[tf.float32] / best[tf.bfloat16]


def devices(run: Run) -> Devices:
    """The devices of this process for the run's request (DEVICES, PRECISION), set up once: call it before
    TensorFlow runs anything (it fixes its devices at first use)."""
    return _set_up(run.devices, run.precision, run.machine_cache)


@lru_cache(maxsize=1)
def _set_up(request: str, precision: str, machine_cache: Path) -> Devices:
    import tensorflow as tf
    import tf_keras as keras
    kind, count = parse_devices(request)
    gpus = tf.config.list_physical_devices("GPU")
    if kind == "GPU" and not gpus:
        raise PipelineError(f"DEVICES={request} but TensorFlow sees no GPU: {why_no_gpu()}")
    kind = kind or ("GPU" if gpus else "CPU")
    names = _gpus(gpus, count) if kind == "GPU" else _cpus(gpus, count)
    if len(names) > 1:
        reduce = tf.distribute.ReductionToOneDevice() if kind == "CPU" else None   # NCCL is for GPUs only
        strategy = tf.distribute.MirroredStrategy(list(names), cross_device_ops=reduce)
    else:
        strategy = tf.distribute.get_strategy()
    precision = parse_precision(precision, kind, machine_cache)
    keras.mixed_precision.set_global_policy(precision)
    reuse_freed_buffers()
    return Devices(kind, names, strategy, precision)


def reuse_freed_buffers() -> bool:
    """Have glibc's malloc keep freed blocks for reuse; False where the C library is not glibc.

    A training step allocates and frees the same 0.5-4 MB tensor buffers every call. TensorFlow pins glibc's
    mmap threshold at 128 KiB the first time a process builds a generator dataset (its patch against a Python
    3.11 leak; the pipeline streams its caches through one), so those buffers were fresh mmaps each time,
    unmapped on free: a MiniLM fine-tuning step faulted ~175,000 pages in anew, 0.4-0.7 s of system time, half
    the step (tests/benchmarks/history.md, 2026-12-07). Hence TensorFlow's patch first, then these thresholds.
    The cost: freed heap up to 1 GiB a process keeps instead of returning it.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    import tensorflow as tf
    for _ in tf.data.Dataset.from_generator(lambda: iter([0]), output_signature=tf.TensorSpec([], tf.int32)):
        pass                                        # TensorFlow's patch runs now, once a process, not later
    libc = ctypes.CDLL("libc.so.6")
    return all(libc.mallopt(option, value) == 1 for option, value in MALLOC_THRESHOLDS.items())


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


def doctor(run: Run) -> str:
    """One paragraph: TensorFlow's build, what it sees, what a training run here would use."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    lines = [f"TensorFlow {tf.__version__} ({'with' if tf.test.is_built_with_cuda() else 'without'} CUDA), "
             f"sees {len(gpus)} GPU(s){': ' + ', '.join(g.name for g in gpus) if gpus else ''}"]
    if not gpus:
        lines.append(f"no GPU: {why_no_gpu()}")
    chosen = f"DEVICES={run.devices or 'unset'}, PRECISION={run.precision or 'default'}"
    dev = devices(run)
    lines.append(f"training here: {dev.describe()} ({chosen})")
    precision, why = default_precision(dev.kind, run.machine_cache)
    lines.append(f"default precision on {dev.kind}: {precision}, because {why}")
    return "\n".join(lines)


@entry_point
def main() -> None:
    run = Run.from_environment()
    print(doctor(run) if "--line" not in sys.argv else "devices: " + devices(run).describe(), flush=True)


if __name__ == "__main__":
    main()
