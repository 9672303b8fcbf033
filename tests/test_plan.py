"""submit.plan: the kernel's time plan, from measured throughputs only."""
import pytest

from core.run import Run
from submit import plan
from conftest import here

MEASURED = {"CPU": {"date": "2026-12-02", "machine": "2 cores", "models": {
    "tfidf-lr": {"embed_texts_per_s": None, "train_examples_per_s": 1000.0, "epochs": 1.0},
    "tiny-frozen": {"embed_texts_per_s": 100.0, "train_examples_per_s": 2000.0, "epochs": 4.0}}}}


def test_a_models_minutes_are_embedding_plus_training_over_the_folds():
    rate = MEASURED["CPU"]["models"]["tiny-frozen"]
    # 3 folds: each trains on 2/3 of 600 rows for 4 epochs at 2,000 examples/s; 600 + 300 texts at 100/s
    assert plan.model_minutes(rate, (600, 300), 3) == pytest.approx((900 / 100 + 3 * 4 * 400 / 2000) / 60)


def test_hardware_without_a_measurement_is_not_guessed(workspace):
    p = plan.make_plan(here(), (600, 300), MEASURED)
    assert p.minutes["tiny-frozen"]["T4"] is None and p.minutes["tiny-frozen"]["CPU"] is not None
    assert "T4" in plan.report(p, MEASURED) and "not measured" in plan.report(p, MEASURED)


def test_the_fit_is_judged_on_the_slowest_measured_hardware_when_the_accelerator_is_unmeasured(workspace):
    p = plan.make_plan(here(), (600, 300), MEASURED)
    assert p.judged_on == "CPU" and p.fits


def test_a_plan_over_the_limit_names_the_slowest_models_to_drop(workspace):
    p = plan.make_plan(here(), (6_000_000, 3_000_000), MEASURED)
    assert not p.fits and p.to_drop()[0] == "tiny-frozen"


def test_the_kernel_refuses_a_plan_that_does_not_fit(workspace, monkeypatch):
    monkeypatch.setattr(plan, "load_throughputs", lambda path=plan.THROUGHPUTS: MEASURED)
    monkeypatch.setattr(plan, "competition_rows", lambda cfg: (6_000_000, 3_000_000))
    [problem] = plan.plan_problems(here())
    assert "over [kaggle] time_limit_minutes = 120" in problem and "drop tiny-frozen" in problem


def test_a_model_without_any_measurement_cannot_be_judged(workspace):
    p = plan.make_plan(here(), (600, 300), {"CPU": {**MEASURED["CPU"], "models": {}}})
    assert p.total is None and not p.fits


def test_without_the_competition_in_input_the_plan_takes_its_configured_rows(workspace):
    from core.paths import REPO
    assert plan.competition_rows(Run.at(config=REPO / "disaster-tweets.toml")) == (7613, 3263)
    assert plan.competition_rows(here()) == plan.QUORA_ROWS          # none configured: Quora's size
