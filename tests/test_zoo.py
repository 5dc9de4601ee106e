"""common/commands/zoo.py: the configs model=<name>, several models on one fixed split of the offline digits
competition, one table."""

from __future__ import annotations

import contextlib
import io

import pandas as pd
import pytest

from common.commands.zoo import merged_table, run_zoo
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.training.models import create_model

DIGITS = get_spec("digits")
MODELS = ["lenet5", "mlp"]


@pytest.fixture(scope="module")
def zoo(digits_dir, tmp_path_factory):
    """The zoo of two tiny models, one epoch each on 300 rows; its folder and what it printed."""
    out = tmp_path_factory.mktemp("runs")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        folder = run_zoo(DIGITS, MODELS, epochs=1, max_train_rows=300, data_dir=str(digits_dir), out_root=out)
    return folder, printed.getvalue()


@pytest.mark.slow  # the module's tiny zoo trains for about 20 s
def test_zoo_writes_one_table_as_csv_and_markdown(zoo):
    folder, _ = zoo
    assert folder.name == "zoo" and folder.parent.name == "digits"
    assert sorted(p.name for p in folder.iterdir()) == ["zoo.csv", "zoo.md"]  # no partial files left
    table = pd.read_csv(folder / "zoo.csv")
    assert list(table.columns) == [
        "model",
        "parameters",
        "val_accuracy",
        "sklearn_test_accuracy",  # the digits competition's extra labelled set
        "train_seconds",
        "images_per_second",
        "epochs",
        "train_rows",
        "hardware",
    ]
    assert sorted(table["model"]) == MODELS
    assert table["val_accuracy"].is_monotonic_decreasing  # best first
    cfg = load_config("digits")[0]
    for row in table.itertuples():
        assert row.parameters == create_model(row.model, cfg).count_params()
        assert 0 <= row.val_accuracy <= 1 and 0 <= row.sklearn_test_accuracy <= 1
        assert row.train_seconds > 0 and row.images_per_second > 0
        assert row.epochs == 1 and row.train_rows == 270  # 90% of the 300 rows


@pytest.mark.slow  # the module's tiny zoo trains for about 20 s
def test_zoo_markdown_and_printed_table_show_every_model(zoo):
    folder, printed = zoo
    lines = (folder / "zoo.md").read_text().splitlines()
    table_lines = [line for line in lines if line.startswith("|")]
    assert table_lines[0].startswith("| model | parameters | val_accuracy | sklearn_test_accuracy |")
    assert len(table_lines) == 2 + len(MODELS)
    assert "| lenet5 | 61,706 |" in "\n".join(table_lines)  # LeNet-5's classic parameter count
    for name in MODELS:
        assert name in printed
    assert "zoo.md" in printed


def test_unknown_model_is_a_user_error_before_anything_is_written(tmp_path, digits_dir):
    with pytest.raises(UserError, match="unknown model 'resnet9000': expected one of .*lenet5"):
        run_zoo(DIGITS, ["mlp", "resnet9000"], epochs=1, data_dir=str(digits_dir), out_root=tmp_path)
    with pytest.raises(UserError, match="^zoo: --models names mlp twice$"):
        run_zoo(DIGITS, ["mlp", "mlp"], epochs=1, data_dir=str(digits_dir), out_root=tmp_path)
    with pytest.raises(UserError, match="epochs must be a positive integer"):
        run_zoo(DIGITS, ["mlp"], epochs=0, data_dir=str(digits_dir), out_root=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # the module's tiny zoo trains for about 20 s
def test_a_later_zoo_replaces_its_models_rows_and_keeps_the_others(zoo):
    folder, _ = zoo
    newer = {"model": "mlp", "val_accuracy": 0.999, "parameters": 1}
    table = merged_table(folder, [newer])
    assert sorted(table["model"]) == MODELS and table.iloc[0]["model"] == "mlp"
    assert table.set_index("model").loc["mlp", "parameters"] == 1
