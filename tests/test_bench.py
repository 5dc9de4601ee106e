"""bench/bench.py: recipes side by side on one holdout split of the offline digits competition, under a budget."""

from __future__ import annotations

import contextlib
import io
import json

import keras
import numpy as np
import pytest

from bench.bench import (
    BenchOptions,
    BudgetedEpochs,
    capped_rows,
    forward_flops,
    main,
    point_at,
    recipe_configs,
    winners,
)
from common.data.folds import holdout_split
from common.ground.errors import UserError
from common.training.models import create_model

RECIPES = ["reference", "default"]
TINY = ["model=small", "epochs=2", "max_train_rows=200"]  # applied to both recipes: 3 steps an epoch, 2 epochs
CHECKPOINTS = (0.0001, 10.0)  # 6 ms: no epoch can have finished; 10 min: both epochs


@pytest.fixture(scope="module")
def bench(digits_dir, tmp_path_factory):
    """One bench run (through the command line's main) of two tiny recipes; its results folder and JSON."""
    out = tmp_path_factory.mktemp("bench")
    argv = ["digits", "--recipes", ",".join(RECIPES), "--checkpoints", ",".join(f"{m:g}" for m in CHECKPOINTS)]
    argv += ["--data-dir", str(digits_dir), "--out", str(out), "--matmul-size", "256"]
    argv += [f"--override={pair}" for pair in TINY]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    (path,) = out.glob("*.json")
    assert f"results written to {path}" in printed.getvalue()
    return out, json.loads(path.read_text())


# ---------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------


def test_bench_writes_json_and_markdown_with_the_same_stem(bench):
    out, document = bench
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and names[0].startswith("digits-") and names[0].endswith(".json")  # no partial files
    assert names[1] == names[0].replace(".json", ".md")
    assert document["complete"] is True and document["competition"] == "digits"
    assert document["signals"] == ["holdout", "holdout.csv"]  # the split's holdout, then digits' extra set
    split = document["split"]
    assert (split["holdout_fraction"], split["random_state"], split["holdout_rows"], split["train_rows"]) == (
        0.1,
        0,
        130,  # 10% of digits' 1,300 train.csv rows
        1170,
    )
    machine = document["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["backend"] and machine["matmul_gflops"] > 0
    assert document["overrides"] == TINY and document["budget_minutes"] == 10.0  # the last checkpoint
    assert document["command"].startswith("python bench/bench.py digits --recipes reference,default")


def test_each_recipe_has_a_curve_speed_and_flops(bench):
    _, document = bench
    assert list(document["recipes"]) == RECIPES
    for name, result in document["recipes"].items():
        assert result["config"]["schedule"] == ("exponential" if name == "reference" else "onecycle")
        assert (result["epochs_planned"], result["epochs_finished"], result["stopped_by_budget"]) == (2, 2, False)
        assert result["train_rows"] == 200
        curve = result["curve"]
        assert [p["epoch"] for p in curve] == [1, 2]
        assert 0 < curve[0]["seconds"] < curve[1]["seconds"] == pytest.approx(result["train_seconds"], abs=0.01)
        for point in curve:
            assert 0 <= point["accuracy"] <= 1 and 0 <= point["extras"]["holdout.csv"] <= 1
            assert point["images_per_second"] > 0 and point["eval_seconds"] > 0
        flops = forward_flops(create_model("small", recipe_configs("digits", [name], TINY)[name]))
        assert result["forward_flops_per_image"] == flops and result["train_flops_per_image"] == 3 * flops
        assert result["images_per_second"] > 0
        rate = result["train_flops_per_image"] * result["images_per_second_steady"] / 1e9
        assert result["train_gflops_per_second"] == pytest.approx(rate, rel=1e-2, abs=1e-3)
        share = result["train_gflops_per_second"] / document["machine"]["matmul_gflops"]
        assert result["flops_share"] == pytest.approx(share, rel=1e-2, abs=1e-4)


def test_checkpoints_pick_the_last_epoch_within_the_time(bench):
    _, document = bench
    for name, row in document["checkpoints"].items():
        assert row["0.0001"] is None
        last = document["recipes"][name]["curve"][-1]
        assert row["10"] == {key: last[key] for key in ("epoch", "seconds", "accuracy", "extras")}
    assert document["winners"]["0.0001"] == {"holdout": None, "holdout.csv": None}
    assert set(document["winners"]["10"].values()) <= set(RECIPES)
    best = max(RECIPES, key=lambda n: document["checkpoints"][n]["10"]["accuracy"])
    assert document["checkpoints"][document["winners"]["10"]["holdout"]]["10"]["accuracy"] == pytest.approx(
        document["checkpoints"][best]["10"]["accuracy"]
    )


def test_markdown_shows_every_table(bench):
    out, document = bench
    text = next(out.glob("*.md")).read_text()
    assert text.startswith("# Benchmark: digits")
    assert "### holdout accuracy at T minutes of training" in text
    assert "### holdout.csv accuracy at T minutes of training" in text
    assert "| recipe | 0.0001 min | 10 min |" in text
    reference = document["checkpoints"]["reference"]["10"]
    assert f"| reference | - | {reference['accuracy']:.5f} (ep 2) |" in text
    assert "| default - reference | - | " in text  # the target: our recipe against the reference CNN
    assert "share of matmul" in text and "### Curves" in text and "**default**" in text
    assert f"{document['machine']['matmul_gflops']:,.1f} GFLOP/s" in text


# ---------------------------------------------------------------------------
# The pieces
# ---------------------------------------------------------------------------


def test_point_at_is_the_last_epoch_finished_within_the_checkpoint():
    curve = [
        {"epoch": e, "seconds": s, "accuracy": a} for e, s, a in [(1, 50.0, 0.9), (2, 120.0, 0.95), (3, 300.0, 0.97)]
    ]
    assert point_at(curve, 0.5) is None  # 30 s: the first epoch ended at 50 s
    assert point_at(curve, 1)["epoch"] == 1
    assert point_at(curve, 2)["epoch"] == 2  # exactly at 120 s counts
    assert point_at(curve, 4.99)["epoch"] == 2
    assert point_at(curve, 5)["epoch"] == 3 and point_at(curve, 20)["epoch"] == 3
    assert point_at([], 5) is None


def test_winners_by_signal_first_recipe_on_a_tie():
    table = {
        "reference": {"5": {"accuracy": 0.99, "extras": {"dig": 0.80}}, "10": None},
        "default": {"5": {"accuracy": 0.98, "extras": {"dig": 0.85}}, "10": {"accuracy": 0.5, "extras": {}}},
        "fast": {"5": {"accuracy": 0.99, "extras": {"dig": 0.70}}, "10": None},
    }
    assert winners(table, ["holdout", "dig"]) == {
        "5": {"holdout": "reference", "dig": "default"},
        "10": {"holdout": "default", "dig": None},
    }


def test_forward_flops_of_a_known_model():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(2, 3, padding="valid")(inputs)  # 26x26x2
    x = keras.layers.MaxPooling2D()(x)  # 13x13x2: free
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10)(x)
    model = keras.Model(inputs, outputs)
    conv, dense = 2 * 26 * 26 * 3 * 3 * 1 * 2, 2 * (13 * 13 * 2) * 10
    assert forward_flops(model) == conv + dense
    inner = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 5, strides=2, padding="same")])
    nested = keras.Model(inputs, keras.layers.Dense(3)(inner(inputs)))  # Dense on each of 14x14 positions
    assert forward_flops(nested) == 2 * 14 * 14 * 5 * 5 * 1 * 4 + 2 * 14 * 14 * 4 * 3


class FakeModel:
    """Predicts class 0 for every image; each predict takes 100 s of the fake clock."""

    def __init__(self, clock: list[float]) -> None:
        self.clock, self.stop_training = clock, False

    def predict(self, images, batch_size=None, verbose=0):
        self.clock[0] += 100.0
        rows = len(images)
        return np.eye(10, dtype=np.float32)[np.zeros(rows, int)]


def test_budget_cuts_training_and_scoring_time_is_not_counted():
    clock = [0.0]
    labels = np.array([0, 0, 1, 2])
    sets = {"holdout": (np.zeros((4, 28, 28, 1), np.uint8), labels)}
    callback = BudgetedEpochs(25.0, steps_per_epoch=2, batch_size=8, sets=sets, now=lambda: clock[0])
    callback.set_model(FakeModel(clock))
    callback.on_train_begin()
    for epoch in range(3):  # each step takes 5 s; the budget ends during the third epoch
        callback.on_epoch_begin(epoch)
        for step in range(2):
            clock[0] += 5.0
            callback.on_train_batch_end(step)
            if callback.model.stop_training:
                break
        callback.on_epoch_end(epoch, {"loss": 1.0})
    assert [p["epoch"] for p in callback.curve] == [1, 2]  # the cut third epoch is not scored
    assert [p["seconds"] for p in callback.curve] == [10.0, 20.0]  # the 100 s of scoring are left out
    assert callback.curve[0]["accuracy"] == 0.5 and callback.curve[0]["eval_seconds"] == 100.0
    assert callback.curve[0]["images_per_second"] == 16 / 10
    assert callback.stopped_by_budget and callback.trained == 25.0 and callback.steps_done == 5


def test_capped_rows_is_a_stratified_subset_of_the_training_rows():
    labels = np.repeat(np.arange(10), 20)
    train, _ = holdout_split(labels, 0.1)
    capped = capped_rows(labels, train, 0, 50)
    assert len(capped) == 50 and set(capped) <= set(train) and np.array_equal(np.bincount(labels[capped]), [5] * 10)
    assert np.array_equal(capped_rows(labels, train, 0, 0), train)
    assert np.array_equal(capped_rows(labels, train, 100, 50), capped)  # the smaller cap wins


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["digits", "--checkpoints", "5,30", "--budget-minutes", "20"], "checkpoint 30 min is beyond"),
        (["digits", "--checkpoints", "5,x"], "--checkpoints must be minutes"),
        (["digits", "--holdout", "1.5"], "--holdout must be between 0 and 1"),
        (["digits", "--recipes", "reference,nosuch"], "unknown preset 'nosuch'"),
        (["digits", "--recipes", "default,default"], "listed twice"),
        (["digits", "--override", "epochs=0"], "epochs must be a positive integer"),
        (["chess"], "unknown competition 'chess'"),
    ],
)
def test_bad_arguments_are_one_line_errors_before_any_work(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
    assert not list(tmp_path.iterdir())
    with pytest.raises(UserError, match="must be positive"):
        BenchOptions(0, (5,))
    with pytest.raises(UserError, match="--matmul-size must be positive"):
        BenchOptions(5, (5,), matmul_size=0)
