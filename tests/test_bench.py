"""The budget benchmark (bench/harness/budget.py, budget_report.py) through `python -m bench.bench`: recipes side by
side on one holdout split of the offline digits competition, under a budget, each against the reference recipe."""

from __future__ import annotations

import contextlib
import io
import json

import keras
import numpy as np
import pytest

from bench.bench import main
from bench.harness import budget
from bench.harness.budget import BenchOptions, BudgetCallback, Trained, reference_name, run_bench
from bench.harness.budget_report import comparisons, point_at, winners
from bench.harness.flops import forward_flops
from bench.harness.recipes import Recipe, parse_recipes, recipe_config, recipe_configs
from common.commands.fixed_split import FixedSplit, fixed_split
from common.data.files import load_dataset
from common.data.folds import HOLDOUT_SEED
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs.stats import mcnemar
from common.training.models import create_model

RECIPES = ["reference", "default", "wide"]
RECIPE_ARGUMENT = "reference,default,wide:width=16"  # wide: the default config, 16 channels
TINY = ["model=small", "epochs=2", "max_train_rows=200"]  # applied to both recipes: 3 steps an epoch, 2 epochs
CHECKPOINTS = (0.0001, 10.0)  # 6 ms: no epoch can have finished; 10 min: both epochs


@pytest.fixture(scope="module")
def bench(digits_dir, tmp_path_factory):
    """One bench run (through the command line's main) of two tiny recipes; its results folder and JSON."""
    out = tmp_path_factory.mktemp("bench")
    argv = ["digits", "--recipes", RECIPE_ARGUMENT, "--checkpoints", ",".join(f"{m:g}" for m in CHECKPOINTS)]
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


@pytest.mark.slow  # the module's tiny bench trains for about 20 s
def test_bench_writes_json_and_markdown_with_the_same_stem(bench):
    out, document = bench
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and names[0].startswith("digits-") and names[0].endswith(".json")  # no partial files
    assert names[1] == names[0].replace(".json", ".md")
    assert document["complete"] is True and document["competition"] == "digits"
    assert document["signals"] == ["holdout", "sklearn_test.csv"]  # the split's holdout, then digits' extra set
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
    assert document["command"].startswith(f"python -m bench.bench digits --recipes {RECIPE_ARGUMENT}")


@pytest.mark.slow  # the module's tiny bench trains for about 20 s
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
            assert 0 <= point["accuracy"] <= 1 and 0 <= point["extras"]["sklearn_test.csv"] <= 1
            assert point["images_per_second"] > 0 and point["eval_seconds"] > 0
        recipe = parse_recipes(RECIPE_ARGUMENT)[RECIPES.index(name)]
        flops = forward_flops(create_model("small", recipe_config("digits", recipe, TINY)))
        assert result["forward_flops_per_image"] == flops and result["train_flops_per_image"] == 3 * flops
        assert result["images_per_second"] > 0
        rate = result["train_flops_per_image"] * result["images_per_second_steady"] / 1e9
        assert result["train_gflops_per_second"] == pytest.approx(rate, rel=1e-2, abs=1e-3)
        share = result["train_gflops_per_second"] / document["machine"]["matmul_gflops"]
        assert result["flops_share"] == pytest.approx(share, rel=1e-2, abs=1e-4)


@pytest.mark.slow  # the module's tiny bench trains for about 20 s
def test_checkpoints_pick_the_last_epoch_within_the_time(bench):
    _, document = bench
    for name, row in document["checkpoints"].items():
        assert row["0.0001"] is None
        last = document["recipes"][name]["curve"][-1]
        assert row["10"] == {key: last[key] for key in ("epoch", "seconds", "accuracy", "extras")}
    assert document["winners"]["0.0001"] == {"holdout": None, "sklearn_test.csv": None}
    assert set(document["winners"]["10"].values()) <= set(RECIPES)
    best = max(RECIPES, key=lambda n: document["checkpoints"][n]["10"]["accuracy"])
    assert document["checkpoints"][document["winners"]["10"]["holdout"]]["10"]["accuracy"] == pytest.approx(
        document["checkpoints"][best]["10"]["accuracy"]
    )


@pytest.mark.slow  # the module's tiny bench trains for about 20 s
def test_markdown_shows_every_table(bench):
    out, document = bench
    text = next(out.glob("*.md")).read_text()
    assert text.startswith("# Benchmark: digits")
    assert "### holdout accuracy at T minutes of training" in text
    assert "### sklearn_test.csv accuracy at T minutes of training" in text
    assert "| recipe | 0.0001 min | 10 min |" in text
    reference = document["checkpoints"]["reference"]["10"]
    assert f"| reference | - | {reference['accuracy']:.5f} (ep 2) |" in text
    assert "| default - reference | - | " in text  # the target: our recipe against the reference CNN
    assert "share of matmul" in text and "### Curves" in text and "**default**" in text
    assert f"{document['machine']['matmul_gflops']:,.1f} GFLOP/s" in text


@pytest.mark.slow  # the module's tiny bench trains for about 20 s
def test_every_recipe_is_tested_against_the_reference_with_mcnemar(bench, digits_dir):
    out, document = bench
    digits = get_spec("digits")
    extras = load_dataset(digits, digits_dir).extras
    rows = {"holdout": document["split"]["holdout_rows"]} | {
        digits.extra_sets[n]: len(t.labels) for n, t in extras.items()
    }
    assert document["reference"] == "reference"  # chosen by the flag's default, as it is listed
    assert document["recipe_definitions"] == ["reference", "default", "wide:width=16"]
    assert document["recipes"]["wide"]["config"]["width"] == 16 and document["recipes"]["wide"]["overrides"] == [
        "width=16"
    ]
    assert set(document["comparisons"]) == {"holdout", "sklearn_test.csv"}
    text = next(out.glob("*.md")).read_text()
    for signal, tests in document["comparisons"].items():
        assert list(tests) == ["default", "wide"]
        for name, cells in tests.items():
            assert cells["0.0001"] is None  # no epoch had finished
            test = cells["10"]
            ours, theirs = (document["checkpoints"][n]["10"] for n in (name, "reference"))
            gain = ours["accuracy"] - theirs["accuracy"] if signal == "holdout" else None
            if gain is not None:
                assert test["gain"] == pytest.approx(gain, abs=1e-6)
                assert f"| {name} - reference | - | {test['gain']:+.5f} (p = {test['p_value']:.2g}" in text
            assert 0 <= test["p_value"] <= 1 and test["tie"] == (test["p_value"] >= 0.05)
            # the gain is the rows only the recipe got right less those only the reference got right, over all rows
            assert test["gain"] == pytest.approx(
                (test["only_recipe"] - test["only_reference"]) / rows[signal], abs=1e-6
            )


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

    def predict(self, images, batch_size=None, verbose=0, callbacks=None):
        self.clock[0] += 100.0
        rows = len(images)
        return np.eye(10, dtype=np.float32)[np.zeros(rows, int)]


def test_budget_cuts_training_and_scoring_time_is_not_counted():
    clock = [0.0]
    labels = np.array([0, 0, 1, 2])
    sets = {"holdout": (np.zeros((4, 28, 28, 1), np.uint8), labels)}
    callback = BudgetCallback(25.0, batch_size=8, sets=sets, steps_per_epoch=2, now=lambda: clock[0])
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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["digits", "--checkpoints", "5,30", "--budget-minutes", "20"], "checkpoint 30 min is beyond"),
        (["digits", "--checkpoints", "5,x"], "--checkpoints must be minutes"),
        (["digits", "--holdout", "1.5"], "--holdout must be between 0 and 1"),
        (["digits", "--recipes", "reference,nosuch"], "unknown preset 'nosuch'"),
        (["digits", "--recipes", "default,default"], "listed twice"),
        (["digits", "--recipes", "wide:widht=48"], "unknown config key 'widht'"),
        (["digits", "--recipes", "wide:model=mlp,width=48"], "model mlp does not read width (it reads dropout only)"),
        (["digits", "--reference", "nosuch"], "--reference 'nosuch' is not among the recipes (reference, default)"),
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


def test_the_reference_is_chosen_by_flag_not_by_name():
    assert reference_name(None, ["reference", "default"]) == "reference"
    assert reference_name(None, ["default", "wide"]) is None
    assert reference_name("default", ["reference", "default"]) == "default"
    with pytest.raises(UserError, match="--reference 'wide' is not among the recipes"):
        reference_name("wide", ["reference", "default"])


def curve_point(epoch: int, seconds: float, accuracy: float) -> dict:
    return {"epoch": epoch, "seconds": seconds, "accuracy": accuracy, "extras": {}}


def test_comparisons_test_each_recipe_against_the_reference_at_each_checkpoint():
    truth = np.repeat(np.arange(10), 10)
    wrong = truth.copy()
    wrong[:12] = (truth[:12] + 1) % 10  # 12 rows wrong
    slightly = truth.copy()
    slightly[:2] = (truth[:2] + 1) % 10  # 2 rows wrong
    reference = Trained({"curve": [curve_point(1, 60.0, 0.88)]}, {1: {"holdout": wrong}})
    strong = Trained({"curve": [curve_point(1, 30.0, 1.0)]}, {1: {"holdout": truth}})
    close = Trained({"curve": [curve_point(1, 30.0, 0.9), curve_point(2, 290.0, 0.98)]}, {1: {"holdout": wrong}})
    close.predicted[2] = {"holdout": slightly}
    trained = {"reference": reference, "strong": strong, "close": close}
    tests = comparisons(trained, "reference", (0.5, 5), {"holdout": truth})["holdout"]
    assert tests["strong"]["0.5"] is None  # the reference had no epoch at 30 s
    assert tests["strong"]["5"] == {
        "gain": pytest.approx(0.12),
        "only_recipe": 12,
        "only_reference": 0,
        "p_value": pytest.approx(mcnemar(truth == truth, wrong == truth).p_value),
        "tie": False,
    }
    assert tests["close"]["5"]["gain"] == pytest.approx(0.10) and not tests["close"]["5"]["tie"]
    same = comparisons({"reference": reference, "same": close}, "reference", (1.5,), {"holdout": truth})
    assert same["holdout"]["same"]["1.5"]["tie"] and same["holdout"]["same"]["1.5"]["p_value"] == 1.0
    assert comparisons(trained, None, (5,), {"holdout": truth}) == {}
    assert comparisons({"strong": strong}, "reference", (5,), {"holdout": truth}) == {}  # not trained yet


def fake_trained(recipe: Recipe, sets: dict, wrong: int) -> Trained:
    """A recipe that 'trained' one epoch in 30 s and got all but the first `wrong` rows of every set right."""
    predicted = {name: np.where(np.arange(len(y)) < wrong, (y + 1) % 10, y) for name, (_, y) in sets.items()}
    scores = {name: float(np.mean(predicted[name] == y)) for name, (_, y) in sets.items()}
    point = {"epoch": 1, "seconds": 30.0, "accuracy": scores.pop("holdout"), "extras": scores, "images_per_second": 1}
    summary = {"recipe": recipe.name, "model": "small", "parameters": 1, "train_rows": 1, "epochs_planned": 1}
    summary |= {"epochs_finished": 1, "stopped_by_budget": False, "train_seconds": 30.0, "images_per_second": 1.0}
    summary |= {"images_per_second_steady": 1.0, "train_flops_per_image": 3, "train_gflops_per_second": 0.0}
    return Trained(summary | {"curve": [point]}, {1: predicted})


def test_results_are_written_after_each_recipe(digits_dir, tmp_path, monkeypatch):
    """A long benchmark left in the background shows every finished recipe, the comparisons included."""
    seen = []

    def fake_train_recipe(recipe, cfg, split, options):
        seen.append([json.loads(p.read_text()) for p in tmp_path.glob("*.json")])
        return fake_trained(recipe, budget.signal_sets(split), 10 if recipe.name == "reference" else 0)

    monkeypatch.setattr(budget, "train_recipe", fake_train_recipe)
    monkeypatch.setattr(budget, "matmul_gflops", lambda size: 1.0)
    resolved = recipe_configs("digits", parse_recipes("reference,better:epochs=1"))
    options = BenchOptions(1.0, (1.0,), data_dir=str(digits_dir), out=tmp_path, reference="better")
    with contextlib.redirect_stdout(io.StringIO()):
        path = run_bench("digits", resolved, options)
    assert seen[0] == [] and len(seen[1]) == 1  # the first recipe's results were on disk before the second
    assert seen[1][0]["complete"] is False and list(seen[1][0]["recipes"]) == ["reference"]
    assert seen[1][0]["comparisons"] == {}  # the reference (better) had not trained yet
    document = json.loads(path.read_text())
    assert document["complete"] is True and document["reference"] == "better"
    test = document["comparisons"]["holdout"]["reference"]["1"]
    assert (test["only_recipe"], test["only_reference"], test["tie"]) == (0, 10, False)
    assert test["p_value"] == pytest.approx(2 * 0.5**10)
    text = path.with_suffix(".md").read_text()
    assert f"| reference - better | {test['gain']:+.5f} (p = 0.002) |" in text
    assert "- at 1 min: better (holdout)" in text


class FirstPixelModel:
    """Predicts an image's first pixel (mod 10) as its class."""

    stop_training = False

    def predict(self, images, batch_size=None, verbose=0, callbacks=None):
        return np.eye(10, dtype=np.float32)[images[:, 0, 0, 0] % 10]


def test_a_judged_sets_halves_are_scored_from_the_whole_sets_predictions(digits_dir, monkeypatch):
    from dataclasses import replace

    data = load_dataset(replace(get_spec("digits"), judged_sets=("sklearn_test",)), digits_dir)
    split = FixedSplit(data, *fixed_split(data.train.labels, 0.1, 0, HOLDOUT_SEED), HOLDOUT_SEED)
    sets, cuts = budget.signal_sets(split), budget.signal_cuts(split)
    assert list(cuts) == ["sklearn_test_pick", "sklearn_test_report"] and {parent for parent, _ in cuts.values()} == {
        "sklearn_test.csv"
    }
    for half, (parent, rows) in cuts.items():
        np.testing.assert_array_equal(sets[half][0], sets[parent][0][rows])
    asked = []
    real = budget.predict_sets
    monkeypatch.setattr(budget, "predict_sets", lambda model, named: asked.append(list(named)) or real(model, named))
    callback = BudgetCallback(60.0, batch_size=8, sets=sets, steps_per_epoch=1, cuts=cuts)
    callback.set_model(FirstPixelModel())
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    point = callback.scored(1, None)
    assert asked == [["holdout", "sklearn_test.csv"]]  # the halves are not predicted a second time
    for half, (parent, rows) in cuts.items():
        images, truth = sets[half]
        assert point["extras"][half] == pytest.approx(np.mean(images[:, 0, 0, 0] % 10 == truth))
        np.testing.assert_array_equal(callback.predicted[1][half], callback.predicted[1][parent][rows])


def test_averaged_weights_are_swapped_in_for_scoring_and_back_out():
    from common.ground.config import Config
    from common.training.backend import setup_hardware
    from common.training.batches import TrainBatches
    from common.training.train import compiled_model

    cfg = Config(model="mlp", epochs=1, batch_size=64, ema=0.5)
    rng = np.random.default_rng(0)
    batches = TrainBatches(rng.integers(0, 256, (128, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 128), cfg, 0)
    _, trainer = compiled_model(cfg, len(batches), setup_hardware(cfg))
    trainer.optimizer.build(trainer.trainable_variables)
    for step in range(2):  # Keras starts the averages at the first step's weights: after a second they differ
        trainer.train_on_batch(*batches[step])
    before = [np.asarray(v).copy() for v in trainer.trainable_variables]
    averages = [np.asarray(v) for v in trainer.optimizer._model_variables_moving_average]
    with budget.averaged_weights(trainer):
        inside = [np.asarray(v).copy() for v in trainer.trainable_variables]
    after = [np.asarray(v) for v in trainer.trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(before, averages, strict=True))
    for weights, expected in ((inside, averages), (after, before)):
        for got, want in zip(weights, expected, strict=True):
            np.testing.assert_allclose(got, want)
