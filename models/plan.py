"""What the machine can afford: a budget in minutes and measured speeds choose the models a run trains.

    python -m models.plan              (make plan)   this machine's plan, and the kernel's
    python -m models.plan names        the models the run's plan takes (recorded in models/plan.json; make train
                                       and make ensemble without MODELS train and blend those)

The measured throughputs (models/throughputs.json, rewritten by `make bench ONLY=quality`) hold, for each kind of
hardware (cpu-float32, cpu-bfloat16, T4, P100, H100), each catalogue model's measured rates (texts a second
through its own caching pass, training examples a second, epochs run), the minutes each module takes to build,
the matrix-product speed of the machine they were measured on, and the order in which the models gained the
most nested score per minute there (the bench's forward selection). A plan:
- predicts each model's minutes at the competition's size: its caching pass over train + test texts, and k folds
  of epochs over (k-1)/k of the train rows; a frozen model whose module's partial member is taken needs no pass
  of its own (the partial's pass fills its cache); modules not built yet add their build minutes. A CPU's rates
  are scaled by this machine's matrix-product speed against the measuring machine's (a short check, measured once
  per machine and precision and cached beside the bfloat16 check);
- takes the blends' members in that measured order while the predicted total fits the budget (BUDGET, else
  [plan] budget_minutes; the kernel: [kaggle] time_limit_minutes on [kaggle] accelerator); a model not measured
  is taken as configured (nothing is guessed), one that does not fit is left out, saying why;
- always takes what MODELS names or what the configuration forces (enabled = "always").
models/plan.json records the plan a run trains with; each model's metrics.json its predicted and actual minutes.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.artifacts import read_json, write_json
from core.cli import entry_point
from core.errors import PipelineError
from core.run import Run
from models.catalogue import catalogue, modules_of

THROUGHPUTS = Path(__file__).with_name("throughputs.json")
PLAN = "plan.json"                  # in the workspace's models/: the plan the run trains with
QUORA_ROWS = (1_306_122, 375_806)
GPUS = ("T4", "P100", "H100")
KERNEL_SHARE = 0.85                 # of a kernel's time limit its training may take: the rest for set-up and blends


@dataclass
class Choice:
    """One model in a plan: taken or not, its predicted minutes (None: not measured), and why."""
    name: str
    taken: bool
    minutes: float | None
    why: str


@dataclass
class Plan:
    hardware: str                                   # the throughputs' class it is predicted on
    budget: float                                   # minutes
    rows: tuple[int, int]                           # train and test rows it is predicted at
    speed: float                                    # this machine's matrix-product speed / the measuring one's
    choices: list[Choice] = field(default_factory=list)
    build_minutes: float = 0.0                      # modules to build first

    @property
    def taken(self) -> list[str]:
        return [c.name for c in self.choices if c.taken]

    @property
    def minutes(self) -> float:
        return self.build_minutes + sum(c.minutes or 0.0 for c in self.choices if c.taken)

    def minutes_of(self, name: str) -> float | None:
        return next((c.minutes for c in self.choices if c.name == name), None)


def load_throughputs(path: Path = THROUGHPUTS) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def competition_rows(run: Run) -> tuple[int, int]:
    """Rows of input/ when the competition is there, else [competition] rows, else the real Quora size."""
    c = run.config.competition
    files = [run.input_dir / c.train, run.input_dir / c.test]
    if all(f.is_file() for f in files):
        with open(files[0], "rb") as a, open(files[1], "rb") as b:
            return sum(1 for _ in a) - 1, sum(1 for _ in b) - 1
    return tuple(c.rows) or QUORA_ROWS


def hardware_of(run: Run) -> str:
    """The throughputs' class this machine trains as: a GPU's name, else cpu-bfloat16 or cpu-float32 by the
    precision training gets here (models.devices)."""
    if run.gpu:
        import tensorflow as tf
        name = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0]).get(
            "device_name", "")
        return next((g for g in GPUS if g in name), "GPU")
    from models.devices import default_precision
    precision = run.precision or default_precision("CPU", run.machine_cache)[0]
    return "cpu-bfloat16" if precision == "mixed_bfloat16" else "cpu-float32"


def machine_speed(run: Run, hardware: str, measured: dict) -> float:
    """This CPU's matrix-product speed over the measuring machine's, in the hardware's precision (1.0 for a GPU,
    or where the measuring machine's is unknown); measured once per machine and cached."""
    reference = (measured.get("machine_speed") or {}).get("gflops")
    if not hardware.startswith("cpu") or not reference:
        return 1.0
    return matmul_gflops(run.machine_cache, hardware.split("-")[1]) / reference


def matmul_gflops(machine_cache: Path, dtype: str) -> float:
    """GFLOP/s of a transformer-shaped matrix product in `dtype` on this machine (cached per CPU and TensorFlow)."""
    from models.devices import cpu_flags, tensorflow_version
    model, flags = cpu_flags()
    key = hashlib.sha256(f"{model}|{' '.join(sorted(flags))}|{tensorflow_version()}|{dtype}".encode()).hexdigest()[:16]
    path = Path(machine_cache) / "matmul-speed.json"
    try:
        known = read_json(path) if path.exists() else {}
    except PipelineError:                       # a damaged cache is measured again
        known = {}
    if not isinstance((known.get(key) or {}).get("gflops"), (int, float)):
        known[key] = {"cpu": model, "dtype": dtype, "gflops": measure_gflops(dtype),
                      "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_json(path, known)
    return float(known[key]["gflops"])


def measure_gflops(dtype: str, repeats: int = 5) -> float:
    import tensorflow as tf
    a = tf.cast(tf.random.normal([1024, 768]), dtype)
    b = tf.cast(tf.random.normal([768, 3072]), dtype)
    tf.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(3):
            tf.matmul(a, b).numpy()
        best = min(best, (time.perf_counter() - start) / 3)
    return 2 * 1024 * 768 * 3072 / best / 1e9


def model_minutes(rates: dict | None, rows: tuple[int, int], k: int, speed: float = 1.0,
                  cached: bool = False) -> float | None:
    """A model's minutes at `rows` from its measured rates (None: not measured); `cached`: its texts' cache is
    filled by another model's pass."""
    if rates is None:
        return None
    n_train, n_test = rows
    embed = 0.0 if cached or not rates.get("embed_texts_per_s") else (n_train + n_test) / rates["embed_texts_per_s"]
    train = k * rates["epochs"] * n_train * (k - 1) / k / rates["train_examples_per_s"]
    return (embed + train) / 60 / speed


def make_plan(run: Run, *, hardware: str | None = None, budget: float | None = None, named: list[str] = (),
              rows: tuple[int, int] | None = None, throughputs: dict | None = None) -> Plan:
    """The models this run takes, in the measured order, within the budget (module docstring)."""
    cfg = run.config
    throughputs = load_throughputs() if throughputs is None else throughputs
    hardware = hardware or hardware_of(run)
    measured = throughputs.get(hardware, {})
    rates, order = measured.get("models", {}), [m for m, *_ in measured.get("order", [])]
    adds = {m: gain > 0 for m, _, gain, *_ in measured.get("order", [])}
    specs = catalogue(cfg)
    gpu = hardware not in ("cpu-float32", "cpu-bfloat16")
    plan = Plan(hardware, budget or run.budget or cfg.plan.budget_minutes, rows or competition_rows(run),
                machine_speed(run, hardware, measured))
    members = set(cfg.blend_members())
    wanted = [m for m in specs if m in members or m in named or cfg.model(m).enabled == "always"]
    candidates = [m for m in order if m in wanted] + [m for m in wanted if m not in order]
    builds = measured.get("modules", {})
    to_build: set[str] = set()
    for name in candidates:
        table, spec = cfg.model(name), specs[name]
        forced = name in named or table.enabled == "always"
        if not forced and (named or table.enabled is False or (table.enabled == "gpu" and not gpu)):
            why = "not named in MODELS" if named else "disabled" if table.enabled is False else "needs a GPU"
            plan.choices.append(Choice(name, False, None, why))
            continue
        shared = spec.kind == "frozen" and any(c.taken and specs[c.name].kind == "partial"
                                               and specs[c.name].handles == spec.handles for c in plan.choices)
        minutes = model_minutes(rates.get(name), plan.rows, cfg.folds.k, plan.speed, shared)
        new_builds = {m for m in set(modules_of(cfg, [spec])) - to_build
                      if not (run.hub_dir / m / "saved_model.pb").exists()}
        build = sum(builds.get(m, 0.0) for m in new_builds) / plan.speed
        left = plan.budget - plan.minutes
        if forced:
            choice = Choice(name, True, minutes, "named in MODELS" if name in named else "always enabled")
        elif not adds.get(name, True):
            choice = Choice(name, False, minutes, f"measured on {hardware}: adds no nested score to the blend")
        elif minutes is None:
            choice = Choice(name, True, None, f"not measured on {hardware}: taken as configured")
        elif minutes + build <= left:
            choice = Choice(name, True, minutes, "fits" + (f" (its module builds in {build:.1f} min)" if build else ""))
        else:
            choice = Choice(name, False, minutes, f"would take {minutes + build:.1f} min, {max(left, 0):.1f} of the "
                                                  f"budget left")
        plan.choices.append(choice)
        if choice.taken:
            to_build |= new_builds
            plan.build_minutes += build
    return plan


def planned(run: Run) -> dict:
    """The plan this workspace's run trains with (models/plan.json): the recorded one while what it was made from
    is the same (the configuration, the throughputs, the hardware, the budget, the rows), else a new one, recorded.
    A plan once made stays the run's plan, though modules get built meanwhile."""
    hardware = hardware_of(run)
    from core.tables import config_files
    identity = {"config": "+".join(_digest(f) for f in config_files(run.config_path)),
                "throughputs": _digest(THROUGHPUTS), "hardware": hardware,
                "budget": run.budget or run.config.plan.budget_minutes, "rows": list(competition_rows(run))}
    path = run.workspace / "models" / PLAN
    try:
        known = read_json(path) if path.exists() else {}
    except PipelineError:
        known = {}
    if known.get("identity") != identity:
        plan = make_plan(run, hardware=hardware)
        known = {"identity": identity, **asdict(plan), "taken": plan.taken}
        write_json(path, known)
    return known


def planned_models(run: Run) -> set[str] | None:
    """The models the workspace's recorded plan took, or None where no plan was recorded (every model ran as
    named)."""
    path = run.workspace / "models" / PLAN
    return set(read_json(path, "`make train` records it again").get("taken", [])) if path.exists() else None


def predicted_minutes(run: Run, name: str) -> float | None:
    """The minutes the recorded plan predicted for a model (None: no plan, or not measured)."""
    path = run.workspace / "models" / PLAN
    try:
        known = read_json(path) if path.exists() else {}
    except PipelineError:
        return None
    return next((c["minutes"] for c in known.get("choices", []) if c["name"] == name), None)


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if Path(path).exists() else ""


def report(plan: Plan) -> str:
    lines = [f"Plan on {plan.hardware} at {plan.rows[0]:,} train + {plan.rows[1]:,} test texts, budget "
             f"{plan.budget:g} min" + (f" (this machine {plan.speed:.2f}x the measuring one's speed)"
                                       if plan.speed != 1.0 else ""), "",
             f"{'model':<40}{'minutes':>10}  "]
    for c in plan.choices:
        minutes = "?" if c.minutes is None else f"{c.minutes:.1f}"
        lines.append(f"{('+ ' if c.taken else '- ') + c.name:<40}{minutes:>10}  {c.why}")
    if plan.build_minutes:
        lines.append(f"{'  module builds':<40}{plan.build_minutes:>10.1f}")
    lines += ["", f"taken: {', '.join(plan.taken) or 'nothing'}; {plan.minutes:.1f} min predicted"
              + (" (and models not measured)" if any(c.taken and c.minutes is None for c in plan.choices) else "")]
    return "\n".join(lines)


def kernel_plan(run: Run) -> Plan:
    """The kernel's plan: its accelerator, KERNEL_SHARE of its time limit."""
    cfg = run.config
    return make_plan(run, hardware=cfg.kaggle.accelerator if cfg.kaggle.enable_gpu else "cpu-float32",
                     budget=kernel_budget(cfg))


def kernel_budget(cfg) -> float:
    return round(KERNEL_SHARE * cfg.kaggle.time_limit_minutes, 1)


def plan_problems(run: Run) -> list[str]:
    """`make kernel`'s check: models the kernel must train (always enabled) whose measured minutes are over its
    limit."""
    plan = kernel_plan(run)
    if plan.minutes <= plan.budget:
        return []
    return [f"the kernel's plan takes {plan.minutes:.0f} min on {plan.hardware} with its always-enabled models, over "
            f"its {plan.budget:g} min ({KERNEL_SHARE:.0%} of [kaggle] time_limit_minutes = "
            f"{run.config.kaggle.time_limit_minutes:g}): enable fewer of them always; `make plan` shows them"]


@entry_point
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    run = Run.from_environment()
    plan = make_plan(run)
    if argv[:1] == ["names"]:
        print(" ".join(planned(run)["taken"]))
        return
    print(report(plan))
    print("\nThe kernel's:\n" + report(kernel_plan(run)))


if __name__ == "__main__":
    main()
