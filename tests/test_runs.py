"""common/runs/__init__.py and writing.py: exclusive run folders, atomic writes, finding runs, Run's typed view."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from common import runs
from common.ground.errors import UserError


def test_run_folders_are_never_shared(tmp_path):
    folders = {runs.create_run_dir(tmp_path, "mnist", "smoke") for _ in range(20)}
    assert len(folders) == 20 and all(f.is_dir() and f.parent.name == "mnist" for f in folders)


def test_atomic_writes_leave_no_partial_files(tmp_path):
    runs.save_array(tmp_path / "a.npy", np.ones(3, np.float32))
    runs.write_json(tmp_path / "m.json", {"accuracy": np.float32(0.5)})
    assert np.load(tmp_path / "a.npy").tolist() == [1, 1, 1]
    assert '"accuracy": 0.5' in (tmp_path / "m.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "m.json"]


def make_run(root, label: str, finished: bool, kind: runs.RunKind = runs.RunKind.TRAINED) -> runs.Run:
    folder = runs.create_run_dir(root, "digits", label)
    runs.start_run(folder, {"epochs": 1}, ["digits"], "CPU", label=label, kind=kind)
    if finished:
        runs.finish_run(folder, 1.0)
    return runs.load_run(folder)


def test_find_run_by_id_prefix_and_latest(tmp_path):
    old = make_run(tmp_path, "a", finished=True)
    new = make_run(tmp_path, "b", finished=True)
    make_run(tmp_path, "c", finished=False)
    assert runs.find_run(tmp_path, "digits", "latest").run_id == new.run_id
    assert runs.find_run(tmp_path, "digits", old.run_id).run_id == old.run_id
    assert runs.load_run(old.folder).status is runs.RunStatus.FINISHED
    with pytest.raises(UserError, match="no run of digits matches 'nope' \\(the runs started last: .*-a-") as error:
        runs.find_run(tmp_path, "digits", "nope")
    assert "latest" not in str(error.value)  # "latest" names one run: the one find_run takes above
    with pytest.raises(UserError, match="3 runs of digits match '20' \\(among them: "):
        runs.find_run(tmp_path, "digits", "20")
    with pytest.raises(UserError, match="no finished run of mnist"):
        runs.find_run(tmp_path, "mnist", None)


def test_a_trained_runs_record_and_config_are_typed(tmp_path):
    run = make_run(tmp_path, "default", finished=True)
    assert (run.kind, run.status, run.label) == (runs.RunKind.TRAINED, runs.RunStatus.FINISHED, "default")
    assert run.record.wall_seconds == 1.0 and run.record.hardware == ["CPU"] and run.record.command.endswith("digits")
    assert run.cfg.epochs == 1 and run.shape == "5x1" and run.settings["epochs"] == 1
    assert [member.run.run_id for member in run.members()] == [run.run_id] and run.members()[0].weight == 1.0
    with pytest.raises(UserError, match="not a blend"):
        _ = run.blend


def test_a_trial_is_its_own_kind_and_leaves_the_competitions_submission_alone(tmp_path):
    run = make_run(tmp_path, f"{runs.TRIAL_PREFIX}study-t3", finished=True, kind=runs.RunKind.TRIAL)
    assert run.kind is runs.RunKind.TRIAL and run.is_trial and runs.trying_reason(run) == "a tune trial"
    runs.update_record(run.folder, status="pruned")  # as a study marks it: the word is decoded once, here
    assert runs.load_run(run.folder).status is runs.RunStatus.PRUNED


def test_mark_stopped_takes_only_the_stopped_states(tmp_path):
    run = make_run(tmp_path, "tune-s-t0", finished=False, kind=runs.RunKind.TRIAL)
    runs.mark_stopped(run.folder, runs.RunStatus.FAILED)
    assert runs.load_run(run.folder).status.shown == "failed"
    with pytest.raises(ValueError, match="pruned or failed"):
        runs.mark_stopped(run.folder, runs.RunStatus.FINISHED)


def write_blend_folder(root, sources: list[str], weights: list[float], config: dict | None = None):
    folder = runs.create_run_dir(root, "digits", runs.BLEND_LABEL)
    blend = runs.BlendConfig(tuple(sources), tuple(weights), sources[0])
    runs.start_run(folder, config if config is not None else blend, ["blend"], label=runs.BLEND_LABEL)
    runs.finish_run(folder, 0.5)
    return runs.load_run(folder)


def test_a_blend_is_a_run_of_its_own_kind_whose_members_are_its_sources_weighted(tmp_path):
    a, b = make_run(tmp_path, "a", finished=True), make_run(tmp_path, "b", finished=True)
    blend = write_blend_folder(tmp_path, [a.run_id, b.run_id], [0.75, 0.25])
    assert yaml.safe_load(blend.config_file.read_text())["kind"] == "blend"
    assert blend.kind is runs.RunKind.BLEND and blend.is_blend and blend.shape == "blend of 2"
    assert [(m.run.run_id, m.weight) for m in blend.members()] == [(a.run_id, 0.75), (b.run_id, 0.25)]
    with pytest.raises(UserError, match="is a blend of 2 runs"):
        _ = blend.cfg
    with pytest.raises(UserError, match="is a blend"):
        blend.model_files()

    # A blend of that blend and `a` again: `a` is reached twice and gets both shares.
    again = write_blend_folder(tmp_path, [blend.run_id, a.run_id], [0.5, 0.5])
    assert {m.run.run_id: m.weight for m in again.members()} == {a.run_id: 0.875, b.run_id: 0.125}


def test_a_blend_whose_source_is_gone_is_one_line(tmp_path):
    a, b = make_run(tmp_path, "a", finished=True), make_run(tmp_path, "b", finished=True)
    blend = write_blend_folder(tmp_path, [a.run_id, b.run_id], [0.5, 0.5])
    (b.folder / runs.RUN_JSON).unlink()
    with pytest.raises(UserError, match=f"source run {b.run_id} is not in"):
        blend.members()


def test_a_run_folder_of_another_format_is_refused_in_one_line(tmp_path):
    run = make_run(tmp_path, "a", finished=True)
    record = json.loads((run.folder / runs.RUN_JSON).read_text())
    assert record["format"] == runs.RUN_FORMAT and run.kind is runs.RunKind.TRAINED
    runs.update_record(run.folder, note="kept")  # a key this version does not know survives a rewrite
    assert json.loads((run.folder / runs.RUN_JSON).read_text())["note"] == "kept"
    for found in ({"format": runs.RUN_FORMAT + 1}, {"format": None}):
        (run.folder / runs.RUN_JSON).write_text(json.dumps(record | found))
        shown = "none" if found["format"] is None else runs.RUN_FORMAT + 1
        message = f"run.json: a run folder of format {shown}; this version reads format {runs.RUN_FORMAT}"
        with pytest.raises(UserError, match=message):
            runs.load_run(run.folder)


def test_runs_under_lists_every_competitions_runs(tmp_path):
    first = make_run(tmp_path, "a", finished=True)
    other = runs.create_run_dir(tmp_path, "mnist", "b")
    runs.start_run(other, {"epochs": 1}, ["mnist"])
    assert [run.folder for run in runs.runs_under(tmp_path)] == [first.folder, other]
    assert runs.runs_under(tmp_path / "nothing") == []


def test_the_mean_of_a_group_of_units_and_none_when_one_of_them_lacks_the_set(tmp_path):
    from common.runs.units import UnitKey, mean_of_units

    arrays = {UnitKey(0, 0): [[0.2, 0.8]], UnitKey(0, 1): [[0.6, 0.4]], UnitKey(None, 0): [[1.0, 0.0]]}
    for key, probabilities in arrays.items():
        runs.unit_dir(tmp_path, key).mkdir(parents=True)
        runs.save_array(runs.unit_dir(tmp_path, key) / "test.npy", np.array(probabilities, np.float32))
    folds = [UnitKey(0, 1), UnitKey(0, 0)]
    assert np.allclose(mean_of_units(tmp_path, "test", folds), [[0.4, 0.6]])
    assert np.allclose(mean_of_units(tmp_path, "test", list(arrays)), [[0.6, 0.4]])
    assert mean_of_units(tmp_path, "dig_mnist", folds) is None and mean_of_units(tmp_path, "test", []) is None
