"""models.plan: a budget in minutes and measured speeds choose the models a run trains; the blend sent is the
best by nested score."""
import json

import pytest

from conftest import here
from core.run import Run
from models import plan

# three members a blend may use, measured on three kinds of hardware; "order": the bench's forward selection
BLENDED = '\n[blends.all]\nmethod = "mean"\nmembers = ["tfidf-lr", "tiny-frozen", "tiny-tokens", "tiny-tuned"]\n'
RATES = {"tfidf-lr": {"embed_texts_per_s": None, "train_examples_per_s": 1000.0, "epochs": 1.0},
         "tiny-frozen": {"embed_texts_per_s": 100.0, "train_examples_per_s": 2000.0, "epochs": 4.0},
         "tiny-tokens": {"embed_texts_per_s": 50.0, "train_examples_per_s": 500.0, "epochs": 2.0},
         "tiny-tuned": {"embed_texts_per_s": None, "train_examples_per_s": 4.0, "epochs": 2.0}}
ORDER = [["tiny-tuned", 0.7, 0.7, 9.0], ["tfidf-lr", 0.72, 0.02, 0.1], ["tiny-frozen", 0.73, 0.01, 0.5],
         ["tiny-tokens", None, 0.0, 1.0]]


def measured(speedup: float = 1.0, **more) -> dict:
    """The rates of every member, `speedup` times faster; what a bench wrote."""
    faster = {m: {**r, "train_examples_per_s": r["train_examples_per_s"] * speedup,
                  **({"embed_texts_per_s": r["embed_texts_per_s"] * speedup} if r["embed_texts_per_s"] else {})}
              for m, r in RATES.items()}
    return {"models": faster, "order": ORDER, **more}


THROUGHPUTS = {"cpu-float32": measured(), "cpu-bfloat16": measured(3.0), "T4": measured(20.0)}


@pytest.fixture
def blended(workspace):
    with open(workspace / "pipeline.toml", "a") as config:
        config.write(BLENDED)
    return here()


def planned(run, hardware, budget, rows=(600, 300), throughputs=THROUGHPUTS, **more):
    return plan.make_plan(run, hardware=hardware, budget=budget, rows=rows, throughputs=throughputs, **more)


def test_a_models_minutes_are_its_caching_pass_plus_training_over_the_folds():
    # 3 folds: each trains on 2/3 of 600 rows for 4 epochs at 2,000 examples/s; 600 + 300 texts at 100/s
    assert plan.model_minutes(RATES["tiny-frozen"], (600, 300), 3) == pytest.approx((900 / 100 + 3 * 4 * 400 / 2000)
                                                                                    / 60)


def test_the_plan_takes_the_measured_order_while_the_predicted_total_fits(blended):
    p = planned(blended, "cpu-float32", budget=1.0)
    assert p.taken == ["tfidf-lr", "tiny-frozen"] and p.minutes <= 1.0
    tuned = next(c for c in p.choices if c.name == "tiny-tuned")
    assert not tuned.taken and "would take 10.0 min, 1.0 of the budget left" in tuned.why


def test_the_same_plan_chooses_differently_on_a_cpu_with_bfloat16_units_and_on_a_gpu(blended):
    cpu, bf16, gpu = (planned(blended, h, budget=5.0).taken for h in ("cpu-float32", "cpu-bfloat16", "T4"))
    assert cpu == ["tfidf-lr", "tiny-frozen"]
    assert bf16 == ["tiny-tuned", "tfidf-lr", "tiny-frozen"] and gpu == bf16


def test_a_model_that_adds_no_nested_score_is_left_out_saying_so(blended):
    tokens = next(c for c in planned(blended, "T4", budget=100.0).choices if c.name == "tiny-tokens")
    assert not tokens.taken and "adds no nested score" in tokens.why


def test_a_model_not_measured_is_taken_as_configured(blended):
    p = planned(blended, "H100", budget=1.0)
    assert p.taken == ["tfidf-lr", "tiny-frozen", "tiny-tokens", "tiny-tuned"]
    assert all("not measured on H100" in c.why for c in p.choices)


def test_models_named_in_models_and_always_enabled_ones_are_taken_whatever_the_budget(blended):
    assert planned(blended, "cpu-float32", budget=0.1, named=["tiny-tuned"]).taken == ["tiny-tuned"]
    path = blended.config_path
    path.write_text(path.read_text().replace('module_lr = 0.01\n', 'module_lr = 0.01\nenabled = "always"\n'))
    assert "tiny-tuned" in planned(here(), "cpu-float32", budget=0.1).taken


def test_a_frozen_model_after_its_modules_partial_one_needs_no_pass_of_its_own():
    assert plan.model_minutes(RATES["tiny-frozen"], (600, 300), 3, cached=True) == pytest.approx(
        3 * 4 * 400 / 2000 / 60)


def test_modules_not_built_yet_count_their_build_minutes(blended):
    slow_build = {"cpu-float32": measured(modules={"tiny": 0.9})}
    p = planned(blended, "cpu-float32", budget=1.0, throughputs=slow_build)
    assert p.taken == ["tfidf-lr"]                                 # tiny-frozen: its module would take 0.9 min more
    assert p.build_minutes == 0.0


def test_a_slower_cpu_than_the_measuring_one_predicts_more_minutes(blended, monkeypatch):
    monkeypatch.setattr(plan, "matmul_gflops", lambda cache, dtype: 50.0)       # this machine: half the speed
    half = {"cpu-float32": measured(machine_speed={"gflops": 100.0})}
    p = planned(blended, "cpu-float32", budget=1.0, throughputs=half)
    assert p.speed == 0.5 and p.minutes_of("tiny-frozen") == pytest.approx(
        2 * plan.model_minutes(RATES["tiny-frozen"], (600, 300), 3))


def test_the_hardware_is_the_devices_precision_on_a_cpu(workspace, monkeypatch):
    monkeypatch.setattr(Run, "gpu", property(lambda run: False))
    assert plan.hardware_of(here().with_(precision="float32")) == "cpu-float32"
    assert plan.hardware_of(here().with_(precision="mixed_bfloat16")) == "cpu-bfloat16"


def test_the_plan_a_run_trains_with_is_recorded_and_kept_while_its_inputs_are_the_same(blended, monkeypatch):
    monkeypatch.setattr(plan, "load_throughputs", lambda path=plan.THROUGHPUTS: THROUGHPUTS)
    monkeypatch.setattr(plan, "competition_rows", lambda run: (600, 300))
    run = blended.with_(precision="float32", budget=1.0)
    first = plan.planned(run)
    assert first["taken"] == ["tfidf-lr", "tiny-frozen"] and (run.workspace / "models" / "plan.json").exists()
    monkeypatch.setattr(plan, "make_plan", lambda *a, **k: pytest.fail("planned anew"))
    assert plan.planned(run)["taken"] == first["taken"]


def test_training_without_names_trains_the_plan_and_records_predicted_and_actual_minutes(blended, monkeypatch):
    from conftest import write_competition
    from folds import make_folds
    from models import train
    monkeypatch.setattr(plan, "load_throughputs", lambda path=plan.THROUGHPUTS: THROUGHPUTS)
    write_competition(blended.workspace)
    make_folds.main()
    train.train_models(blended.with_(precision="float32", budget=0.005))       # only TF-IDF fits
    assert sorted(p.name for p in (blended.workspace / "models").iterdir() if p.is_dir()) == ["tfidf-lr"]
    minutes = json.loads((blended.workspace / "models" / "tfidf-lr" / "metrics.json").read_text())["minutes"]
    assert minutes["predicted"] == pytest.approx(plan.model_minutes(RATES["tfidf-lr"], (60, 20), 3))
    assert minutes["actual"] > 0


def test_the_kernel_refuses_always_enabled_models_over_its_time_limit(blended, monkeypatch):
    monkeypatch.setattr(plan, "load_throughputs", lambda path=plan.THROUGHPUTS: THROUGHPUTS)
    monkeypatch.setattr(plan, "competition_rows", lambda run: (6_000_000, 3_000_000))
    path = blended.config_path
    path.write_text(path.read_text().replace('module_lr = 0.01\n', 'module_lr = 0.01\nenabled = "always"\n'))
    [problem] = plan.plan_problems(here())
    assert "[kaggle] time_limit_minutes = 120" in problem and "always-enabled" in problem


def test_without_the_competition_in_input_the_plan_takes_its_configured_rows(workspace):
    from core.paths import REPO
    assert plan.competition_rows(Run.at(config=REPO / "disaster-tweets.toml")) == (7613, 3263)
    assert plan.competition_rows(here()) == plan.QUORA_ROWS          # none configured: Quora's size


def test_the_repositorys_throughputs_are_read_by_the_plan(workspace):
    table = plan.load_throughputs()
    assert set(table) <= {"cpu-float32", "cpu-bfloat16", *plan.GPUS} and table
    assert all("models" in entry for entry in table.values())
