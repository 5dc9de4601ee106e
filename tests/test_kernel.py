"""common/runs/notebook.py and common/commands/kernel.py: the notebook folder, what to type next, and its script run
end to end on a Kaggle-like /kaggle/input."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.commands.kernel import next_steps
from common.ground.errors import UserError
from common.ground.spec import PIXEL_COLUMNS, get_spec
from common.runs.notebook import USERNAME_PLACEHOLDER, NotebookLevers, write_kernel
from tests.conftest import pixel_frame
from tests.run_fakes import fake_record
from tests.test_quiet_start import startup_lines, user_environment

pytestmark = pytest.mark.usefixtures("figures_left_out")  # no report is tested here

DIGITS = get_spec("digits")
ROOT = Path(__file__).resolve().parents[1]
TINY = ["folds=2", "epochs=1", "model=mlp", "max_train_rows=200"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, digits_dir) -> tuple[Path, Path]:
    """(runs root, run folder): a real, tiny digits run with saved models, trained once for this file."""
    from common.execution.pipeline import RunOptions, run_competition
    from common.ground.config_files import load_config

    root = tmp_path_factory.mktemp("runs")
    cfg, label = load_config("digits", "smoke", None, TINY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        folder = run_competition(DIGITS, cfg, label, ["digits", *TINY], RunOptions(str(digits_dir), root))
    return root, folder


@pytest.fixture
def kernel_dir(digits_run, tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    root, _ = digits_run
    return write_kernel(root, DIGITS, None, tmp_path / "kernel")


def load_script(path: Path):
    """The generated script as a module, to call its functions without TensorFlow."""
    spec = importlib.util.spec_from_file_location("generated_predict", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# The folder
# ---------------------------------------------------------------------------


@pytest.mark.slow  # the module's tiny run
def test_kernel_folder_layout(kernel_dir, digits_run):
    run_id = digits_run[1].name
    metadata = json.loads((kernel_dir / "kernel-metadata.json").read_text())
    slug = f"digits-{run_id}".lower()
    assert metadata["id"] == f"{USERNAME_PLACEHOLDER}/{slug}" and metadata["title"] == slug
    assert (kernel_dir / metadata["code_file"]).is_file()
    assert (metadata["language"], metadata["kernel_type"]) == ("python", "script")
    assert metadata["is_private"] and not metadata["enable_gpu"] and not metadata["enable_internet"]
    assert metadata["competition_sources"] == ["sklearn-digits"]

    dataset = json.loads((kernel_dir / "dataset" / "dataset-metadata.json").read_text())
    assert metadata["dataset_sources"] == [dataset["id"]]
    assert 6 <= len(dataset["id"].split("/")[1]) <= 50 and 6 <= len(dataset["title"]) <= 50
    facts = json.loads((kernel_dir / "dataset" / "ensemble.json").read_text())
    assert facts["models"] == ["f0-s0.keras", "f1-s0.keras"]
    assert all((kernel_dir / "dataset" / name).is_file() for name in facts["models"])
    assert (facts["test_id_column"], facts["submission_columns"]) == ("id", ["id", "label"])

    script = (kernel_dir / "predict.py").read_text()
    assert f"RUN_ID = {run_id!r}" in script
    assert "from common" not in script and "import common" not in script
    assert "your-kaggle-username" in next_steps(kernel_dir)


@pytest.mark.slow  # the module's tiny run
def test_username_from_environment(digits_run, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "ada")
    folder = write_kernel(digits_run[0], DIGITS, digits_run[1].name[:15], tmp_path / "k")
    metadata = json.loads((folder / "kernel-metadata.json").read_text())
    assert metadata["id"].startswith("ada/") and metadata["dataset_sources"][0].startswith("ada/")
    assert USERNAME_PLACEHOLDER not in next_steps(folder)


def test_run_without_models_refused(tmp_path):
    folder = tmp_path / "digits" / "20260101-000000-default-abcd"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(fake_record(folder)))
    (folder / "config.yaml").write_text("save_models: false\n")
    with pytest.raises(UserError, match="no saved models"):
        write_kernel(tmp_path, DIGITS, None, tmp_path / "k")


# ---------------------------------------------------------------------------
# The script
# ---------------------------------------------------------------------------


def kaggle_layout(tmp_path: Path, dataset: Path, script: Path, test: pd.DataFrame) -> tuple[Path, Path]:
    """(input root, working dir) as Kaggle mounts them: the competition's test.csv and the models' dataset under
    /kaggle/input, the script alone in /kaggle/working."""
    inputs = tmp_path / "input"
    (inputs / "Kannada-MNIST").mkdir(parents=True)
    test.to_csv(inputs / "Kannada-MNIST" / "test.csv", index=False)
    shutil.copytree(dataset, inputs / "digits-models-dataset")
    work = tmp_path / "working"
    work.mkdir()
    shutil.copy(script, work / "predict.py")
    return inputs, work


def run_script(inputs: Path, work: Path) -> subprocess.CompletedProcess:
    """The notebook's script as Kaggle runs it: outside the project, without TF_CPP_MIN_LOG_LEVEL; it prints no
    library start-up line (TensorFlow's, as it loads)."""
    env = {k: v for k, v in user_environment().items() if k != "PYTHONPATH"}
    command = [sys.executable, "predict.py", str(inputs)]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert startup_lines(done.stdout + done.stderr) == [], done.stderr[-2000:]
    return done


def check_submission(work: Path, test: pd.DataFrame, ids: np.ndarray, run_folder: Path) -> None:
    """submission.csv: the test file's ids in its order, labelled by the run's own ensemble, averaged the same way."""
    from common.runs import load_run
    from common.training.inference import predict_with_models

    submission = pd.read_csv(work / "submission.csv")
    assert list(submission.columns) == ["id", "label"]
    assert submission["id"].tolist() == ids.tolist()
    images = test[list(PIXEL_COLUMNS)].to_numpy(np.uint8).reshape(-1, 28, 28, 1)
    expected = predict_with_models(load_run(run_folder).model_files(), images).argmax(axis=1)
    assert submission["label"].tolist() == expected.tolist()


@pytest.mark.slow  # the module's tiny run
def test_script_runs_end_to_end_on_kaggle_layout(kernel_dir, digits_run, tmp_path):
    """Script alone in the working dir; test.csv and the dataset under a fake /kaggle/input. The test set is not
    the one the run predicted: Kaggle re-runs the notebook on a hidden test set of another size (here 1,031 rows,
    against the run's 300, and not a whole number of the script's 1,024-row batches)."""
    n = 1031
    assert n != len(np.load(digits_run[1] / "test.npy"))
    ids = np.random.default_rng(0).permutation(n)  # ids in an order the script can only learn from the file
    test = pixel_frame(n, 5, ("id", ids))
    inputs, work = kaggle_layout(tmp_path, kernel_dir / "dataset", kernel_dir / "predict.py", test)
    done = run_script(inputs, work)
    assert str(inputs / "digits-models-dataset") in done.stdout and f"{n} rows" in done.stdout
    check_submission(work, test, ids, digits_run[1])


@pytest.mark.slow  # the module's tiny run
def test_trying_the_script_here_writes_into_the_kernel_folder_not_the_current_one(kernel_dir, tmp_path):
    """The try next_steps suggests, started from another folder (the project's, say): submission.csv lands in the
    kernel folder beside the script; on Kaggle it goes to /kaggle/working."""
    inputs, elsewhere = tmp_path / "input", tmp_path / "elsewhere"
    (inputs / "sklearn-digits").mkdir(parents=True)
    elsewhere.mkdir()
    pixel_frame(20, 3, ("id", np.arange(20))).to_csv(inputs / "sklearn-digits" / "test.csv", index=False)
    assert f"python {kernel_dir / 'predict.py'} INPUT_ROOT" in next_steps(kernel_dir)
    assert f"it writes {kernel_dir / 'submission.csv'}" in next_steps(kernel_dir)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(kernel_dir / "predict.py"), str(inputs)]
    done = subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == f"wrote {kernel_dir / 'submission.csv'}: 20 rows"
    assert len(pd.read_csv(kernel_dir / "submission.csv")) == 20 and not list(elsewhere.iterdir())


@pytest.mark.slow  # the module's tiny run
def test_script_prints_the_versions_it_runs_under_and_those_of_the_run(kernel_dir, digits_run, capsys):
    import keras

    from common.runs import load_run

    facts = json.loads((kernel_dir / "dataset" / "ensemble.json").read_text())
    versions = load_run(digits_run[1]).record.versions
    assert facts["trained_with"] == {"keras": versions["keras"], "backends": {"tensorflow": versions["tensorflow"]}}
    line = load_script(kernel_dir / "predict.py").versions(keras, facts)
    running = f"running on Keras {keras.__version__}, backend tensorflow {versions['tensorflow']}"
    assert (
        line
        == f"{running}; models saved with Keras {versions['keras']}, trained on tensorflow {versions['tensorflow']}"
    )


@pytest.mark.slow  # the module's tiny run
def test_script_says_which_keras_cannot_load_a_model(kernel_dir, tmp_path):
    import keras

    script = load_script(kernel_dir / "predict.py")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(SystemExit, match=rf"Keras {keras.__version__} cannot load it \(saved with Keras 9.9.9\)"):
        script.load(keras, tmp_path / "broken.keras", {"trained_with": {"keras": "9.9.9"}})


# ---------------------------------------------------------------------------
# submit kannada: the notebook it would push
# ---------------------------------------------------------------------------


@pytest.fixture
def kannada_root(digits_run, tmp_path) -> Path:
    """The digits run's folder as a finished Kannada run (same 28x28 models): what `submit kannada` reads."""
    root = tmp_path / "runs"
    shutil.copytree(digits_run[1], root / "kannada" / digits_run[1].name)
    return root


def no_credentials_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "home").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_") and k != "PYTHONPATH"}
    return env | {"HOME": str(tmp_path / "home"), "KAGGLE_CONFIG_DIR": str(tmp_path / "home")}


@pytest.mark.slow  # the module's tiny run
def test_submit_kannada_dry_run_shows_the_notebook_that_then_runs_on_kaggle_layout(kannada_root, digits_run, tmp_path):
    run_id, folder = digits_run[1].name, tmp_path / "notebook"
    command = [sys.executable, str(ROOT / "run.py"), "submit", "kannada", "--dry-run", "-m", "tiny"]
    command += ["--yes"]  # the module's run is a smoke run on a subset: made for trying things
    command += ["--out", str(kannada_root), "--dest", str(folder), "--wait-minutes", "20"]
    done = subprocess.run(command, env=no_credentials_env(tmp_path), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    plan, owner = done.stdout, USERNAME_PLACEHOLDER
    dataset, kernel = f"{owner}/kannada-models-{run_id}".lower(), f"{owner}/kannada-{run_id}".lower()
    assert f"dry run: nothing sent; would submit run {run_id} to the code competition Kannada-MNIST" in plan
    assert f"1. dataset {dataset}: private, CC0-1.0, 3 files from {folder / 'dataset'}" in plan
    assert f"api.dataset_create_new(folder='{folder / 'dataset'}', public=False, quiet=True, dir_mode='skip')" in plan
    assert f"2. notebook: api.kernels_push(folder='{folder}') with kernel-metadata.json:" in plan
    assert re.search(r'"competition_sources": \[\s+"Kannada-MNIST"\s+\]', plan) and '"enable_internet": false' in plan
    assert re.search(rf'"dataset_sources": \[\s+"{dataset}"\s+\]', plan)
    assert (
        f"3. submission: api.competition_submit_code(file_name='submission.csv', message='tiny (run {run_id}, 0."
        in plan
        and " on OOF)', " in plan
        and f"competition='Kannada-MNIST', kernel='{kernel}', kernel_version=VERSION" in plan
    )
    assert "waits: at most 20 minutes" in plan

    n = 517  # the hidden test set's size is not the public one's
    ids = np.arange(n) + 5000
    test = pixel_frame(n, 9, ("id", ids))
    inputs, work = kaggle_layout(tmp_path, folder / "dataset", folder / "predict.py", test)
    done = run_script(inputs, work)
    assert "running on Keras" in done.stdout and f"{n} rows" in done.stdout
    check_submission(work, test, ids, digits_run[1])


@pytest.mark.slow  # the module's tiny run
def test_submit_kannada_without_credentials_is_one_line_and_writes_nothing(kannada_root, tmp_path):
    command = [sys.executable, str(ROOT / "run.py"), "submit", "kannada", "--yes", "--out", str(kannada_root)]
    command += ["--dest", str(tmp_path / "notebook")]
    done = subprocess.run(command, env=no_credentials_env(tmp_path), capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "no Kaggle credentials" in done.stderr and not (tmp_path / "notebook").exists()


@pytest.mark.slow  # the module's tiny run
def test_script_falls_back_to_dataset_beside_itself(kernel_dir, tmp_path):
    script = load_script(kernel_dir / "predict.py")
    empty_input = tmp_path / "input"
    empty_input.mkdir()
    assert script.find_dataset(empty_input) == kernel_dir / "dataset"
    assert script.find_dataset(tmp_path / "missing") == kernel_dir / "dataset"


@pytest.mark.slow  # the module's tiny run
def test_script_finds_dataset_through_symbolic_links(kernel_dir, tmp_path):
    script = load_script(kernel_dir / "predict.py")
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "models").symlink_to(kernel_dir / "dataset", target_is_directory=True)
    assert script.find_dataset(tmp_path / "input") == tmp_path / "input" / "models"


@pytest.mark.slow  # the module's tiny run
def test_script_ignores_another_runs_dataset(kernel_dir, tmp_path):
    script = load_script(kernel_dir / "predict.py")
    other = tmp_path / "input" / "other-models"
    other.mkdir(parents=True)
    (other / "ensemble.json").write_text(json.dumps({"run_id": "someone-else"}))
    assert script.find_dataset(tmp_path / "input") == kernel_dir / "dataset"


@pytest.mark.slow  # the module's tiny run
def test_script_reads_implicit_ids_and_refuses_wrong_columns(kernel_dir, tmp_path):
    script = load_script(kernel_dir / "predict.py")
    mnist_facts = {"test_id_column": None, "first_id": 1, "submission_columns": ["ImageId", "Label"]}
    pixel_frame(4, 1).to_csv(tmp_path / "test.csv", index=False)
    ids, images = script.read_test(tmp_path / "test.csv", mnist_facts)
    assert ids.tolist() == [1, 2, 3, 4] and images.shape == (4, 28, 28, 1) and images.dtype == np.uint8
    with pytest.raises(SystemExit, match="no column 'id'"):
        script.read_test(tmp_path / "test.csv", {"test_id_column": "id", "first_id": 0})
    script.write_submission(ids, np.array([7, 0, 3, 9]), mnist_facts, tmp_path / "submission.csv")
    assert (tmp_path / "submission.csv").read_text().splitlines()[:2] == ["ImageId,Label", "1,7"]


# ---------------------------------------------------------------------------
# The transductive round
# ---------------------------------------------------------------------------


def transductive_layout(
    tmp_path: Path, digits_run, settings: dict, n: int
) -> tuple[Path, Path, pd.DataFrame, np.ndarray]:
    """A kernel with the round, on a Kaggle-like input holding a test set of `n` rows and a labelled train.csv."""
    folder = write_kernel(digits_run[0], DIGITS, None, tmp_path / "kernel", NotebookLevers(settings))
    ids = np.arange(n) + 100
    test = pixel_frame(n, 3, ("id", ids))
    inputs, work = kaggle_layout(tmp_path, folder / "dataset", folder / "predict.py", test)
    train = pixel_frame(60, 4, ("label", np.arange(60) % 10))
    train.to_csv(inputs / "Kannada-MNIST" / "train.csv", index=False)
    return inputs, work, test, ids


@pytest.mark.slow  # the module's tiny run
def test_transductive_round_fine_tunes_every_model_on_a_hidden_test_set_of_another_size(digits_run, tmp_path):
    settings = {"threshold": 0.0, "epochs": 1, "rounds": 2, "train_rows": 40, "batch_size": 32}  # all are "sure"
    inputs, work, test, ids = transductive_layout(tmp_path, digits_run, settings, n=137)
    facts = json.loads((tmp_path / "kernel" / "dataset" / "ensemble.json").read_text())
    assert facts["transductive"]["epochs"] == 1 and facts["transductive"]["rotate"] == 8.0  # the run's own range
    done = run_script(inputs, work)
    assert "transductive round 2: 137 of 137 test images sure" in done.stdout
    assert done.stdout.count("fine-tuned and predicted with") == 4  # both units' models, in each of 2 rounds
    submission = pd.read_csv(work / "submission.csv")
    assert submission["id"].tolist() == ids.tolist() and submission["label"].between(0, 9).all()


@pytest.mark.slow  # the module's tiny run
def test_transductive_round_past_its_time_limit_keeps_the_plain_ensemble(digits_run, tmp_path):
    inputs, work, test, ids = transductive_layout(tmp_path, digits_run, {"max_minutes": 0}, n=50)
    done = run_script(inputs, work)
    assert "time limit reached: 2 models keep their previous answers" in done.stdout
    check_submission(work, test, ids, digits_run[1])


@pytest.mark.slow  # the module's tiny run
def test_transductive_setting_unknown_is_refused(digits_run, tmp_path):
    with pytest.raises(UserError, match="unknown config key 'epoch'"):
        write_kernel(digits_run[0], DIGITS, None, tmp_path / "k", NotebookLevers({"epoch": 3}))


@pytest.mark.slow  # the module's tiny run
def test_kernel_and_submit_dry_run_take_the_test_time_levers_from_the_command_line(kannada_root, tmp_path):
    folder, env = tmp_path / "notebook", no_credentials_env(tmp_path)
    for command, dest in (("kernel", tmp_path / "k"), ("submit", folder)):
        argv = [sys.executable, str(ROOT / "run.py"), command, "kannada", "--transductive", "--adabn"]
        argv += [
            "--out",
            str(kannada_root),
            "--dest",
            str(dest),
            *(["--dry-run", "--yes"] if command == "submit" else []),
        ]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        facts = json.loads((dest / "dataset" / "ensemble.json").read_text())
        assert facts["transductive"]["threshold"] == 0.8 and facts["train_file"] == "train.csv" and facts["adabn"]
    assert "(the notebook with its transductive round and AdaBN)" in done.stdout


@pytest.mark.parametrize("flag", ["--transductive", "--adabn"])
def test_submit_a_notebook_lever_for_a_csv_competition_is_one_line(tmp_path, flag):
    # MNIST: a CSV competition on Kaggle (digits, the offline demo, is refused before any other check)
    argv = [sys.executable, str(ROOT / "run.py"), "submit", "mnist", flag, "--dry-run"]
    done = subprocess.run([*argv, "--out", str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and f"{flag} is a notebook's lever" in done.stderr
    assert done.stderr.strip().count("\n") == 0


# ---------------------------------------------------------------------------
# AdaBN: BatchNorm statistics re-estimated on the hidden test images
# ---------------------------------------------------------------------------


def test_adabn_standardises_every_batchnorm_layer_on_the_test_images_in_order():
    import keras

    from common.runs.notebook import TEMPLATE

    inputs = keras.Input((28, 28, 1), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="tanh")(x)  # no channel that is 0 everywhere
    x = keras.layers.BatchNormalization(epsilon=1e-6)(x)
    x = keras.layers.Conv2D(3, 3, activation="tanh")(x)
    x = keras.layers.BatchNormalization(epsilon=1e-6)(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x)))
    # brighter, other images than any the (untrained) statistics describe: moving mean 0 and variance 1
    images = np.random.default_rng(0).integers(100, 256, (50, 28, 28, 1), dtype=np.uint8)
    norms = load_script(TEMPLATE).batchnorm_adapted(keras, model, images, batch_size=7)  # 7 batches, one short
    assert len(norms) == 2
    for norm in norms:  # in inference mode each layer's outputs now have mean 0 and variance 1 per channel
        outputs = keras.Model(model.inputs, norm.output).predict(images, verbose=0).reshape(-1, norm.input.shape[-1])
        np.testing.assert_allclose(outputs.mean(axis=0), 0, atol=1e-3)
        np.testing.assert_allclose(outputs.var(axis=0), 1, atol=1e-3)  # the second only if the first came first


@pytest.mark.slow  # the module's tiny run
def test_adabn_notebook_says_what_it_adapted_and_leaves_a_model_without_batchnorm_as_it_was(digits_run, tmp_path):
    folder = write_kernel(digits_run[0], DIGITS, None, tmp_path / "kernel", levers=NotebookLevers(adabn=True))
    assert json.loads((folder / "dataset" / "ensemble.json").read_text())["adabn"] is True
    ids = np.arange(40) + 7
    test = pixel_frame(40, 6, ("id", ids))
    inputs, work = kaggle_layout(tmp_path, folder / "dataset", folder / "predict.py", test)
    done = run_script(inputs, work)
    assert done.stdout.count("AdaBN: 0 BatchNorm layers re-estimated on the test images") == 2  # MLPs, two units
    check_submission(work, test, ids, digits_run[1])  # the plain ensemble's answers, row for row
