"""A time plan for the kernel: each model's predicted wall time at the competition's size, and whether it fits.

    python -m submit.plan [--train-rows N --test-rows N]          (make plan)

Predictions come only from measured throughputs (tests/benchmarks/throughputs.json, written by `make bench
ONLY=scale` with the date and hardware they came from): a model's embedding rate (texts/s through its
frozen modules, caches filled once) and training rate (training examples x epochs per second, prediction
included), on each kind of hardware where they were measured. Time at size N = (train + test texts) /
embedding rate + folds x epochs x training rows per fold / training rate. A hardware kind without a
measurement shows "not measured": nothing is guessed. The fit is judged on the kernel's accelerator
([kaggle] accelerator) where measured, else on the slowest measured hardware as an upper bound, against
[kaggle] time_limit_minutes; the models to drop to fit are the slowest first.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from core.cli import entry_point
from core.paths import REPO
from core.run import Run
from submit.kernel_contents import kernel_models

THROUGHPUTS = REPO / "tests" / "benchmarks" / "throughputs.json"
HARDWARE = ("T4", "P100", "H100", "CPU")
QUORA_ROWS = (1_306_122, 375_806)


@dataclass(frozen=True)
class Plan:
    rows: tuple[int, int]
    limit_minutes: float
    judged_on: str                                  # the hardware the fit is judged on
    minutes: dict[str, dict[str, float | None]]     # model -> hardware -> minutes (None: not measured)

    @property
    def total(self) -> float | None:
        times = [m[self.judged_on] for m in self.minutes.values()]
        return None if any(t is None for t in times) else sum(times)

    @property
    def fits(self) -> bool:
        return self.total is not None and self.total <= self.limit_minutes

    def to_drop(self) -> list[str]:
        """The slowest models first, until the rest fit (unmeasured ones first of all)."""
        order = sorted(self.minutes, key=lambda m: -(self.minutes[m][self.judged_on] or float("inf")))
        left, dropped = dict(self.minutes), []
        for name in order:
            if sum(m[self.judged_on] or float("inf") for m in left.values()) <= self.limit_minutes:
                break
            dropped.append(name)
            left.pop(name)
        return dropped


def load_throughputs(path: Path = THROUGHPUTS) -> dict:
    """{hardware: {"date", "machine", "models": {model: {embed_texts_per_s, train_examples_per_s, epochs}}}}."""
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def model_minutes(measured: dict | None, rows: tuple[int, int], k: int) -> float | None:
    if measured is None:
        return None
    n_train, n_test = rows
    embed = (n_train + n_test) / measured["embed_texts_per_s"] if measured.get("embed_texts_per_s") else 0.0
    train = k * measured["epochs"] * n_train * (k - 1) / k / measured["train_examples_per_s"]
    return (embed + train) / 60


def competition_rows(run: Run) -> tuple[int, int]:
    """Rows of input/ when the competition is there, else [competition] rows, else the real Quora size."""
    cfg = run.config
    files = [run.input_dir / cfg.competition.train, run.input_dir / cfg.competition.test]
    if all(f.is_file() for f in files):
        with open(files[0], "rb") as a, open(files[1], "rb") as b:
            return sum(1 for _ in a) - 1, sum(1 for _ in b) - 1
    return tuple(cfg.competition.rows) or QUORA_ROWS


def make_plan(run: Run, rows: tuple[int, int] | None = None, throughputs: dict | None = None) -> Plan:
    cfg = run.config
    throughputs = load_throughputs() if throughputs is None else throughputs
    rows = rows or competition_rows(run)
    minutes = {m: {hw: model_minutes(throughputs.get(hw, {}).get("models", {}).get(m), rows, cfg.folds.k)
                   for hw in HARDWARE} for m in kernel_models(cfg)}
    measured = [hw for hw in HARDWARE if hw in throughputs]
    accelerator = cfg.kaggle.accelerator
    judged_on = accelerator if accelerator in throughputs else (measured[-1] if measured else accelerator)
    return Plan(rows, cfg.kaggle.time_limit_minutes, judged_on, minutes)


def report(plan: Plan, throughputs: dict) -> str:
    lines = [f"Time plan at {plan.rows[0]:,} train + {plan.rows[1]:,} test texts, limit {plan.limit_minutes:g} min",
             "", f"{'model':<24}" + "".join(f"{hw:>14}" for hw in HARDWARE)]
    for name, times in plan.minutes.items():
        lines.append(f"{name:<24}" + "".join(f"{_minutes(times[hw]):>14}" for hw in HARDWARE))
    lines.append(f"{'total':<24}" + "".join(f"{_minutes(_sum(plan, hw)):>14}" for hw in HARDWARE))
    lines.append("")
    for hw in HARDWARE:
        facts = throughputs.get(hw)
        lines.append(f"{hw}: " + (f"measured {facts['date']} on {facts['machine']}" if facts else "not measured"))
        for name, rates in (facts or {}).get("models", {}).items():
            if "machine" in rates and name in plan.minutes:      # measured apart from the entry's run
                lines.append(f"  {name}: measured {rates['date']} on {rates['machine']}")
    verdict = ("fits" if plan.fits else "does not fit") if plan.total is not None else "cannot be judged"
    lines.append(f"judged on {plan.judged_on}: the run {verdict}"
                 + (f"; drop {', '.join(plan.to_drop())} to fit" if plan.total is not None and not plan.fits else ""))
    return "\n".join(lines)


def plan_problems(run: Run) -> list[str]:
    """`make kernel`'s check: a plan whose measured time is over the kernel's limit, with the models to drop.
    A plan with unmeasured models cannot be judged: it is said, and not refused."""
    cfg = run.config
    plan = make_plan(run)
    if plan.total is None:
        unmeasured = [m for m, t in plan.minutes.items() if t[plan.judged_on] is None]
        print(f"warning: no measured throughput for {', '.join(unmeasured)} on {plan.judged_on}; the kernel's time "
              f"cannot be planned (`make bench ONLY=scale` measures it)")
        return []
    if plan.fits:
        return []
    return [f"the kernel's plan takes {plan.total:.0f} min on {plan.judged_on}, over [kaggle] time_limit_minutes = "
            f"{plan.limit_minutes:g}: drop {', '.join(plan.to_drop())} from [blends.{cfg.default_blend}] members, or "
            f"measure the throughputs on the kernel's hardware (`make bench ONLY=scale`); `make plan` shows them"]


def _sum(plan: Plan, hw: str) -> float | None:
    times = [m[hw] for m in plan.minutes.values()]
    return None if any(t is None for t in times) else sum(times)


def _minutes(value: float | None) -> str:
    return "not measured" if value is None else f"{value:,.0f} min"


@entry_point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int)
    parser.add_argument("--test-rows", type=int)
    args = parser.parse_args(argv)
    rows = (args.train_rows, args.test_rows) if args.train_rows and args.test_rows else None
    print(report(make_plan(Run.from_environment(), rows), load_throughputs()))


if __name__ == "__main__":
    main()
