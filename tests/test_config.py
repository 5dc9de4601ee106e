"""common/ground/config.py: YAML defaults, presets and typed overrides; unknown keys and bad types raise."""

from __future__ import annotations

import pytest

from common.ground.config import Config
from common.ground.config_files import available_presets, load_config, parse_overrides
from common.ground.errors import UserError
from common.ground.spec import COMPETITIONS


@pytest.mark.parametrize("competition", COMPETITIONS)
def test_every_competition_has_a_valid_default_config(competition):
    cfg, label = load_config(competition)
    assert isinstance(cfg, Config) and label == "default"


@pytest.mark.parametrize("preset", available_presets())
def test_every_preset_resolves_for_every_competition(preset):
    for competition in COMPETITIONS:
        cfg, label = load_config(competition, preset)
        assert label == preset


def test_layers_apply_in_order(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("epochs: 3\nlr: 0.01\n")
    cfg, _ = load_config("mnist", "smoke", extra, ["lr=0.02", "shear=5"])
    assert cfg.max_train_rows == 10_000  # from the preset
    assert cfg.epochs == 3  # the file beats the preset
    assert cfg.lr == 0.02 and cfg.shear == 5.0  # the command line beats everything; int widened to float


def test_a_files_section_for_the_competition_wins_and_other_sections_are_skipped(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("epochs: 3\nlr: 0.01\nkannada:\n  epochs: 9\nmnist:\n  lr: 0.5\n  width: 8\n")
    kannada, _ = load_config("kannada", None, mine)
    assert (kannada.epochs, kannada.lr, kannada.width) == (9, 0.01, 16)  # its own section beats the file's keys
    mnist, _ = load_config("mnist", None, mine, ["lr=0.02"])
    assert (mnist.epochs, mnist.lr, mnist.width) == (3, 0.02, 8)  # the command line still beats both


def test_a_competitions_section_is_typed_and_must_be_a_mapping(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("kannada:\n  epochs: many\n")
    with pytest.raises(UserError, match=r"mine.yaml \(kannada\): epochs must be int, got 'many'"):
        load_config("kannada", None, mine)
    load_config("mnist", None, mine)  # another competition's section is not read
    mine.write_text("kannada: 3\n")
    with pytest.raises(UserError, match="kannada: expected a mapping of key: value for that competition"):
        load_config("mnist", None, mine)


def test_best_is_a_gpu_preset_of_full_data_models_with_a_section_per_competition():
    mnist, kannada = load_config("mnist", "best")[0], load_config("kannada", "best")[0]
    assert (mnist.folds, mnist.full_models, mnist.width, mnist.holdout) == (0, 15, 32, 0.1)
    assert (kannada.folds, kannada.full_models, kannada.model, kannada.width, kannada.epochs) == (0, 1, "vgg6", 64, 60)


def test_overrides_are_parsed_by_the_field_type():
    assert parse_overrides(["epochs=7", "lr=1e-3", "deterministic=true", "model=small"]) == {
        "epochs": 7,
        "lr": 0.001,
        "deterministic": True,
        "model": "small",
    }


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["epoch=3"], "unknown config key 'epoch'"),
        (["epochs=3.5"], "epochs must be int"),
        (["lr=fast"], "lr must be float"),
        (["deterministic=maybe"], "deterministic must be bool"),
        (["epochs"], "expected key=value"),
        (["folds=0"], "folds must be"),
        (["folds=1"], "folds must be at least 2"),
        (["xla=sometimes"], "xla must be one of"),
        (["dropout=1.5"], r"config: dropout must be in \[0, 1\), got 1.5"),
        (["pseudo_threshold=0"], r"config: pseudo_threshold must be in \(0, 1\], got 0.0"),
        (["lr="], r"command line: lr needs a value \(e.g. lr=0.003\)"),
        (["freeze_convs="], r"command line: freeze_convs needs a value \(e.g. freeze_convs=true\)"),
        (["freeze_convs=true"], r"config: freeze_convs needs init_from"),
    ],
)
def test_bad_overrides_raise_one_clear_error(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config("mnist", overrides=overrides)


def test_config_file_with_unknown_key_or_wrong_type(tmp_path):
    bad_key, bad_type = tmp_path / "a.yaml", tmp_path / "b.yaml"
    bad_key.write_text("epochz: 3\n")
    bad_type.write_text("epochs: many\n")
    with pytest.raises(UserError, match=r"a.yaml: unknown config key 'epochz'"):
        load_config("mnist", config_file=bad_key)
    with pytest.raises(UserError, match=r"b.yaml: epochs must be int"):
        load_config("mnist", config_file=bad_type)


def test_a_key_without_a_value_in_a_file_says_so_as_a_file_writes_it(tmp_path):
    empty = tmp_path / "c.yaml"
    empty.write_text("lr:\n")
    with pytest.raises(UserError, match=r"c.yaml: lr needs a value \(e.g. lr: 0.003\)"):
        load_config("mnist", config_file=empty)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown preset 'turbo': expected one of .*smoke"):
        load_config("mnist", "turbo")


def test_chosen_keys_are_what_the_user_set_by_hand(tmp_path):
    from common.ground.config_files import chosen_keys

    own = tmp_path / "mine.yaml"
    own.write_text("dropout: 0.3\n")
    assert chosen_keys(None, ["width=8", "lr=0.001"]) == {"width", "lr"}
    assert chosen_keys(own, []) == {"dropout"}
    own.write_text("dropout: 0.3\nkannada:\n  width: 24\nmnist:\n  lr: 0.002\n")  # a section counts for its own
    assert chosen_keys(own, [], "kannada") == {"dropout", "width"} and chosen_keys(own, []) == {"dropout"}


def test_threads_must_not_be_negative():
    with pytest.raises(UserError, match="threads must be 0"):
        Config(threads=-1)
