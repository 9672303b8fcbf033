import json

import numpy as np
import pytest

from core.data import load_train
from core.metrics import summarize
from folds import make_folds
from models import train
from conftest import artifacts, here, record_folds


@pytest.mark.parametrize("name", ["tfidf-lr", "tiny-frozen", "tiny-tokens", "tiny-tuned"])
def test_artifacts_meet_the_contract(ready, name):
    train.main(["--model", name])
    oof, test, metrics = artifacts(ready, name)
    y = load_train(here()).target
    assert oof.dtype == test.dtype == np.float32 and oof.shape == (60,) and test.shape == (20,)
    assert np.isfinite(oof).all() and ((0 <= oof) & (oof <= 1)).all() and ((0 <= test) & (test <= 1)).all()
    assert metrics["oof"]["f1"] == pytest.approx(summarize(y, oof)["f1"]) == metrics["score"]["oof"]
    assert metrics["threshold"] == metrics["oof"]["threshold"] and 0 <= metrics["score"]["nested"] <= 1
    assert metrics["folds_fingerprint"] == make_folds.folds_fingerprint(here())
    assert [f["fold"] for f in metrics["folds"]] == [0, 1, 2] and sum(f["n"] for f in metrics["folds"]) == 60


def test_frozen_modules_train_on_cached_embeddings(ready, capsys):
    train.main(["--model", "tiny-frozen"])
    assert "heads on cached embeddings" in capsys.readouterr().out
    assert artifacts(ready, "tiny-frozen")[2]["path"] == "frozen"
    assert list((ready / "models" / ".cache" / "embeddings").glob("*/*.npy"))


def test_token_features_train_a_pooling_head_on_cached_token_embeddings(ready, capsys):
    train.main(["--model", "tiny-tokens"])
    assert "pooling heads on cached token embeddings" in capsys.readouterr().out
    assert artifacts(ready, "tiny-tokens")[2]["path"] == "tokens"
    assert list((ready / "models" / ".cache" / "tokens").glob("*/*.offsets.npy"))


def test_fine_tuned_modules_log_their_path_and_curves_are_plotted(ready, capsys):
    train.main(["--model", "tiny-tuned"])
    assert "fine-tuned module inside the training step" in capsys.readouterr().out
    assert (ready / "models" / "training_curves.png").exists()
    assert (ready / "models" / "tiny-tuned" / "fold0" / "logs").is_dir()


def scalar_tags(log_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    return {tag for events in log_dir.rglob("events.out.tfevents.*")
            for tag in EventAccumulator(str(events)).Reload().Tags()["tensors"]}


@pytest.mark.parametrize("name", ["tiny-frozen", "tiny-tuned"])
def test_tensorboard_shows_loss_auc_and_f1_per_epoch_for_train_and_validation(ready, name):
    train.main(["--model", name])
    logs = ready / "models" / name / "fold0" / "logs"
    for split in ("train", "validation"):
        assert {"epoch_loss", "epoch_auc", "epoch_f1"} <= scalar_tags(logs / split)
        assert "epoch_accuracy" not in scalar_tags(logs / split)


def test_the_epoch_f1_is_the_f1_at_the_best_threshold_of_the_scores():
    from sklearn.metrics import f1_score
    from models.training import BestF1
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.06).astype(np.float32)
    scores = np.clip(0.3 * y + rng.random(2000) * 0.7, 0, 1).astype(np.float32)
    metric = BestF1()
    for part in np.array_split(np.arange(2000), 4):     # streamed over batches
        metric.update_state(y[part], scores[part])
    bins = np.minimum((scores * BestF1.BINS).astype(int), BestF1.BINS - 1)
    best = max(f1_score(y, bins >= cut) for cut in range(BestF1.BINS))
    assert float(metric.result()) == pytest.approx(best, abs=1e-6)


def test_a_model_over_several_modules_trains_one_head_on_their_embeddings_side_by_side(ready):
    with open(ready / "pipeline.toml", "a") as config:
        config.write('\n[models.tiny-pair]\nhandle = ["tiny", "tiny"]\noutput_dim = 8\n')
    train.main(["--model", "tiny-pair"])
    import tensorflow as tf
    shapes = tf.train.load_checkpoint(str(ready / "models" / "tiny-pair" / "fold0" / "weights")).get_variable_to_shape_map()
    kernels = sorted(s for name, s in shapes.items() if name.endswith("kernel/.ATTRIBUTES/VARIABLE_VALUE"))
    assert kernels == [[8, 1], [8, 8]]      # two 4-d embeddings -> the [8] hidden layer -> 1
    assert artifacts(ready, "tiny-pair")[2]["path"] == "frozen"


def test_several_seeds_train_a_run_each_and_average_their_predictions(ready):
    with open(ready / "pipeline.toml", "a") as config:
        config.write('\n[models.tiny-seeds]\nhandle = "tiny"\noutput_dim = 4\nseeds = 2\n')
    train.main(["--model", "tiny-seeds"])
    fold0 = ready / "models" / "tiny-seeds" / "fold0"
    runs = [np.load(fold0 / f"seed{s}" / "oof.npy") for s in (0, 1)]
    assert not np.allclose(runs[0], runs[1])                       # different seeds, different heads
    np.testing.assert_allclose(np.load(fold0 / "oof.npy"), (runs[0] + runs[1]) / 2, rtol=1e-6)
    tests = [np.load(ready / "models" / "tiny-seeds" / f"fold{k}" / f"seed{s}" / "test.npy")
             for k in range(3) for s in (0, 1)]
    np.testing.assert_allclose(artifacts(ready, "tiny-seeds")[1], np.mean(tests, axis=0), rtol=1e-5)


def test_an_interrupted_run_resumes_at_the_unfinished_fold_with_the_same_result(ready, monkeypatch):
    train.main(["--model", "tiny-frozen"])
    uninterrupted = artifacts(ready, "tiny-frozen")[0]
    out = ready / "models" / "tiny-frozen"
    for leftover in ["oof.npy", "test.npy", "metrics.json", "fold1/done.json", "fold2"]:
        path = out / leftover
        path.unlink() if path.is_file() else __import__("shutil").rmtree(path)   # as if killed in fold 1
    trained = record_folds(monkeypatch)
    train.main(["--model", "tiny-frozen"])
    assert trained == [1, 2]
    np.testing.assert_allclose(artifacts(ready, "tiny-frozen")[0], uninterrupted, atol=1e-5)


def test_ctrl_c_exits_with_a_resume_message_and_keeps_finished_folds(ready, monkeypatch, capsys):
    real_run = train.run_fold

    def interrupted(trainer, fold):
        if fold.k == 1:
            raise KeyboardInterrupt
        return real_run(trainer, fold)
    monkeypatch.setattr(train, "run_fold", interrupted)
    with pytest.raises(SystemExit) as exit_:
        train.main(["--model", "tfidf-lr"])
    assert exit_.value.code == 130 and "run the same command again to resume" in capsys.readouterr().err
    assert (ready / "models" / "tfidf-lr" / "fold0" / "done.json").exists()
    assert not (ready / "models" / "tfidf-lr" / "metrics.json").exists()


def test_a_finished_model_is_not_trained_again(ready, monkeypatch, capsys):
    train.main(["--model", "tfidf-lr"])
    trained = record_folds(monkeypatch)
    train.main(["--model", "tfidf-lr"])
    assert trained == [] and "up to date" in capsys.readouterr().out


def test_a_changed_spec_is_refused_until_the_model_is_rebuilt(ready, monkeypatch, capsys):
    train.main(["--model", "tfidf-lr"])
    config = ready / "pipeline.toml"
    config.write_text(config.read_text().replace('kind = "tfidf"', 'kind = "tfidf"\nC = 0.5'))
    with pytest.raises(SystemExit):
        train.main(["--model", "tfidf-lr"])
    assert "make clean-model MODEL=tfidf-lr" in capsys.readouterr().err
    monkeypatch.setenv("FORCE", "1")
    train.main(["--model", "tfidf-lr"])
    assert artifacts(ready, "tfidf-lr")[2]["spec"]["C"] == 0.5


def test_a_model_trained_before_the_seeds_option_stays_up_to_date(ready, capsys):
    train.main(["--model", "tiny-frozen"])
    stamp_file = ready / "models" / "tiny-frozen" / "stamp.json"
    stamp = json.loads(stamp_file.read_text())
    stamp["spec"].pop("seeds", None)                    # as written before the option existed
    stamp_file.write_text(json.dumps(stamp))
    train.main(["--model", "tiny-frozen"])
    assert "up to date" in capsys.readouterr().out


def test_changed_folds_are_refused(ready, monkeypatch, capsys):
    train.main(["--model", "tfidf-lr"])
    config = ready / "pipeline.toml"
    config.write_text(config.read_text().replace("seed = 7", "seed = 9"))
    monkeypatch.setenv("FORCE", "1")
    make_folds.main()
    monkeypatch.delenv("FORCE")
    with pytest.raises(SystemExit):
        train.main(["--model", "tfidf-lr"])
    assert "folds_fingerprint" in capsys.readouterr().err
