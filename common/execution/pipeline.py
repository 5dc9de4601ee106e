"""The whole path for one competition: data -> folds -> units (fold x seed) -> ensemble -> run folder.

Everything is validated before a run folder is created, so bad input leaves nothing behind. Units are saved
the moment they finish; a run whose units are all complete is finalised (ensemble, metrics, submission,
report) by the same code whether it ran in one go, was resumed, or had its units trained elsewhere (merge).
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from common import runs
from common.data.files import Dataset, load_dataset
from common.data.folds import same_folds
from common.data.sources import DataFile
from common.data.trainset import HOLDOUT_SET, TrainSet, folds_table, prepare_train_set
from common.execution.summary import print_summary
from common.ground.checks import check_run_config
from common.ground.config import GROWABLE, Config
from common.ground.errors import UserError, stop_message, stopped
from common.ground.spec import CompetitionSpec
from common.runs.ensemble import averaged_sets, write_ensemble_files
from common.runs.latest import publish_submission
from common.runs.metrics import (
    accuracy,
    accuracy_by_group,
    leaderboard_estimate,
    oof_from_units,
    run_metrics,
    submitted_score,
)
from common.runs.report import write_report
from common.runs.units import UnitKey, UnitOutput, all_units, is_complete, load_unit, save_unit
from common.training.backend import Hardware, available_cores, resolve_hardware
from common.training.precision import resolved_precision
from common.training.pseudo import resolve_pseudo_from
from common.training.signals import signals_stop_the_run
from common.training.transfer import record_transfer, resolve_init_from

log = logging.getLogger("digits")


@dataclass(frozen=True)
class RunOptions:
    data_dir: str | None = None
    out_root: Path | None = None
    resume: str | None = None  # run id, unique prefix, or "latest" (the newest unfinished run)
    only: UnitKey | None = None  # train this (fold, seed index) alone
    scheduler: str | None = None  # a dask.distributed address, or local:N
    seeds: int | None = None  # with resume: grow the run (finished or not) to this many seeds per fold
    full_models: int | None = None  # with resume: grow the run to this many full-data models
    kind: runs.RunKind = runs.RunKind.TRAINED  # a study's trials are TRIAL ("latest" passes them by)
    # Called with the run folder and each unit once it is saved and logged; it may raise to stop the run there
    # (a study's pruner).
    on_unit: Callable[[Path, UnitKey, UnitOutput], None] | None = None


# ---------------------------------------------------------------------------
# Training the units
# ---------------------------------------------------------------------------


def executor(folder: Path, cfg: Config, todo: list[UnitKey], data: Dataset, train: TrainSet, options: RunOptions):
    """The units of `todo` as they finish: trained here, or on a Dask cluster with --scheduler."""
    if options.scheduler:
        from common.execution.distributed import train_on_cluster

        return train_on_cluster(options.scheduler, folder.name, cfg, todo, data.spec.name, options.data_dir)
    from common.execution.local import train_here

    return train_here(cfg, todo, data, train, folder)


def train_units(folder: Path, cfg: Config, todo: list[UnitKey], data: Dataset, train: TrainSet, options: RunOptions):
    """The one place where finished units are saved and logged, whichever executor trained them."""
    if not todo:
        return
    units = executor(folder, cfg, todo, data, train, options)
    # closing: a run stopped here (an error, a study's pruner) stops its executor too, Dask futures included
    with closing(units) as finished, tqdm(total=len(todo), desc="units", unit="unit") as bar:
        for key, output in finished:
            save_and_log(folder, key, output, train, options)
            bar.update()


def save_and_log(folder: Path, key: UnitKey, output: UnitOutput, train: TrainSet, options: RunOptions) -> None:
    save_unit(folder, key, output)
    where = output.hardware
    runs.note_hardware(folder, f"dask {options.scheduler}: {where}" if options.scheduler else where)
    log_unit(key, train, output)
    if options.on_unit:
        options.on_unit(folder, key, output)


def log_unit(key: UnitKey, train: TrainSet, output: UnitOutput) -> None:
    if not key.holds_out:
        log.info("full-data model %s: trained on all %d rows in %.0f s", key.name, len(train.labels), output.seconds)
        return
    labels = train.labels[train.folds == key.fold]
    score = accuracy(labels, output.probabilities[runs.VALID])
    log.info("fold %d seed %d: accuracy %.5f in %.0f s", key.fold, key.seed, score, output.seconds)


# ---------------------------------------------------------------------------
# Finalising: ensemble, metrics, submission, report
# ---------------------------------------------------------------------------


def write_ensemble(folder: Path, cfg: Config, data: Dataset, train: TrainSet) -> runs.Metrics:
    """Averages the saved units, scores the ensemble, writes its files (common/runs/ensemble.py). OOF comes from
    the fold models alone; test and the extra sets average the units that `ensemble` names (the submitted ones)."""
    units = {key: load_unit(folder, key) for key in all_units(cfg)}
    held_out = {key: unit.probabilities[runs.VALID] for key, unit in units.items() if key.holds_out}
    oof = oof_from_units(train.folds, held_out) if held_out else None
    names = [runs.TEST, *data.extras]
    averaged = averaged_sets(folder, list(units), names, cfg.ensemble)
    extras = data.scored_sets(averaged)
    seconds = {key: unit.seconds for key, unit in units.items()}
    note_mixed_hardware(units)
    scores = run_metrics(train.labels, train.folds, held_out, oof, seconds, extras)
    scores |= scores_by_group(folder, data, list(units), names)
    scores |= scores_by_origin(train, oof) if oof is not None else {}
    if HOLDOUT_SET in data.extras and held_out:  # the estimate adds the ensemble's gain on the holdout to OOF
        unit_holdout = {key: unit.probabilities[HOLDOUT_SET] for key, unit in units.items()}
        holdout = data.extras[HOLDOUT_SET].labels, unit_holdout, averaged[HOLDOUT_SET]
        scores |= leaderboard_estimate(scores["oof_accuracy"], *holdout)
    metrics = runs.Metrics(submitted=submitted_models(data, cfg, list(units), scores), **scores)
    arrays = ({runs.OOF: oof} if oof is not None else {}) | averaged
    write_ensemble_files(folder, data, arrays, train.labels, metrics)
    return metrics


def submitted_models(data: Dataset, cfg: Config, keys: list[UnitKey], scores: dict) -> runs.Submitted:
    """The units the submission averages, and their score on the signal that judges them."""
    chosen = runs.ensemble_keys(keys, cfg.ensemble)
    names, fold_models = [key.name for key in chosen], all(key.holds_out for key in chosen)
    oof = scores.get("oof_accuracy")
    return submitted_score(data.spec, cfg.ensemble, names, oof, scores["extra_accuracy"], fold_models)


def scores_by_group(folder: Path, data: Dataset, keys: list[UnitKey], names: list[str]) -> dict:
    """With both fold and full-data models: each extra set (the holdout too) scored by the fold models, the
    full-data models and all of them, so one run measures which ensemble to submit."""
    if len({key.group for key in keys}) < 2:
        return {}
    scored = {group: data.scored_sets(averaged_sets(folder, keys, names, group)) for group in runs.ENSEMBLE_GROUPS}
    return {"extra_accuracy_by_group": accuracy_by_group(scored)}


def note_mixed_hardware(units: dict[UnitKey, UnitOutput]) -> None:
    """Resumed or merged runs may hold units trained on other backends or devices: accepted, and said."""
    where = {}
    for key, unit in units.items():
        where.setdefault(f"{unit.backend} on {unit.device}", []).append(key)
    if len(where) > 1:
        log.info(
            "units trained on different hardware: %s", "; ".join(f"{k}: {describe_units(v)}" for k, v in where.items())
        )


def scores_by_origin(train: TrainSet, oof: np.ndarray) -> dict:
    """With extra_train, the OOF score counts train.csv's rows only, so it compares with runs without the extra
    set; the extra set gets an OOF score of its own. Folds and units still score every row they held out."""
    own = train.from_train_csv()
    if own.all():
        return {}
    extra = {
        f"{name}_oof": accuracy(train.labels[train.origin == name], oof[train.origin == name])
        for name in np.unique(train.origin[~own])
    }
    return {"oof_accuracy": accuracy(train.labels[own], oof[own]), "oof_extra_accuracy": extra}


def finalise(folder: Path, cfg: Config, data: Dataset, train: TrainSet, start: float) -> None:
    metrics = write_ensemble(folder, cfg, data, train)
    runs.finish_run(folder, time.perf_counter() - start)
    published = publish_submission(folder)  # the competition's submission.csv: the latest run's
    log.info("report: %s", write_report(folder, train.images, train.labels, data))
    print_summary(folder, data.spec, metrics, time.perf_counter() - start, published)


def missing_units(folder: Path, cfg: Config) -> list[UnitKey]:
    return [key for key in all_units(cfg) if not is_complete(folder, key)]


def describe_units(keys: list[UnitKey]) -> str:
    return ", ".join(key.name for key in keys)


# ---------------------------------------------------------------------------
# Opening a run folder: new, resumed, or merged
# ---------------------------------------------------------------------------


def resumable_run(root: Path, competition: str, run_id: str, options: RunOptions = RunOptions()) -> runs.Run:
    """The run to continue: by id or prefix, or 'latest' for the newest unfinished one. With more seeds or more
    full-data models (options.seeds, options.full_models), a finished run too: it grows to that many."""
    if run_id == "latest":
        unfinished = runs.unfinished_runs(root, competition)
        if not unfinished:
            raise UserError(f"--resume latest: no unfinished run of {competition} under {root / competition}")
        run = unfinished[-1]
    else:
        run = runs.find_run(root, competition, run_id)
    if run.is_blend:
        raise UserError(f"--resume {run.run_id}: a blend trains nothing; blend its sources again to change it")
    growth = {name: value for name in GROWABLE if (value := getattr(options, name)) is not None}
    for name, value in growth.items():
        if value <= getattr(run.cfg, name):
            raise UserError(
                f"--resume {run.run_id} --{name.replace('_', '-')} {value}: the run has {getattr(run.cfg, name)}"
                f" already; ask for more (or continue it as it is: --resume {run.run_id})"
            )
    if run.finished and not growth:
        raise UserError(
            f"run {run.run_id} is already finished; start a new run instead of --resume (or add seeds: --seeds N,"
            " or full-data models: --full-models N)"
        )
    return run


def grown_config(cfg: Config, options: RunOptions) -> Config:
    """A resumed run's config with the seeds and full-data models asked for (their units' seeds do not depend on
    the counts, so the units it has stay members)."""
    return replace(cfg, **{name: value for name in GROWABLE if (value := getattr(options, name)) is not None})


def check_same_folds(folder: Path, train: TrainSet) -> None:
    """A resumed or merged run must see the very rows and folds its units were trained on."""
    run = runs.load_run(folder)
    if not same_folds(run.folds(), folds_table(train)):
        raise UserError(f"{run.folds_file}: the data or config changed since this run started; folds differ")


@contextmanager
def run_log(folder: Path, resume: str) -> Iterator[None]:
    """Log lines go to the run's train.log and, above the progress bars (tqdm's logging redirect), to stderr.
    Ctrl-C or SIGTERM inside stops the run at once (common/training/signals.py): the stop carries how to continue
    it (`resume`, the command), which train.log records and run.py prints as the stop's one line."""
    handlers = [logging.FileHandler(folder / runs.TRAIN_LOG), logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    for handler in handlers:
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with signals_stop_the_run(), logging_redirect_tqdm(loggers=[log]):
            yield
    except KeyboardInterrupt as stop:
        stop = stopped(stop, continue_hint(folder, resume))
        log.removeHandler(handlers[1])  # the terminal gets the line once, from run.py
        log.info("%s", stop_message(stop))
        raise stop from None
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()


def continue_hint(folder: Path, resume: str) -> str:
    """How to go on after Ctrl-C: a study's trial continues with its study's own command, any other run with
    `resume` (its finished units are kept either way)."""
    if runs.load_run(folder).is_trial:
        return "this trial stays unfinished; the same `run.py tune` command continues its study with new trials"
    return f"continue with {resume}"


def resume_command(competition: str, folder: Path, options: RunOptions) -> str:
    """The whole command that continues a run: its id, and the data, run folders, executor and unit it was
    started with."""
    only = options.only
    words = ["python", "run.py", competition, "--resume", folder.name]
    flags = [("--data-dir", options.data_dir), ("--out", options.out_root), ("--scheduler", options.scheduler)]
    if only:
        flags += [("--fold", "all" if only.fold is None else only.fold), ("--seed", only.seed)]
    return shlex.join([*words, *[str(part) for flag in flags if flag[1] is not None for part in flag]])


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def check_before_folder(spec: CompetitionSpec, cfg: Config, options: RunOptions) -> Hardware | None:
    """What can be refused before the data is read and any run folder exists. Returns the hardware the units
    train on here (None: they train on a scheduler's workers)."""
    check_run_config(spec, cfg)
    hardware = None
    if options.scheduler:
        from common.execution.distributed import check_reachable

        check_reachable(options.scheduler)  # a malformed local:N, a scheduler that does not answer
        here_only = [name for name, value in (("tensorboard=true", cfg.tensorboard), ("stack", cfg.stack > 1)) if value]
        if here_only:
            raise UserError(
                f"{here_only[0]}: works for units trained here, in this process; not with --scheduler (a worker"
                " trains one unit at a time)"
            )
    else:
        hardware = resolve_hardware(cfg)  # a GPU asked for but absent, a precision it lacks, tensorboard off TensorFlow
    if options.only and options.only not in all_units(cfg):
        only = options.only
        has = [f"folds 0-{cfg.folds - 1}, seeds 0-{cfg.seeds - 1}"] if cfg.folds else []
        has += [f"full-data models (--fold all) seeds 0-{cfg.full_models - 1}"] if cfg.full_models else []
        fold = "all" if only.fold is None else only.fold
        raise UserError(f"--fold {fold} --seed {only.seed}: the run has {'; '.join(has) or 'no such unit'}")
    return hardware


def run_competition(
    spec: CompetitionSpec, cfg: Config, label: str, argv: list[str], options: RunOptions = RunOptions()
) -> Path:
    """Trains (or continues) one run; finalises it once every unit is complete. Returns its folder."""
    start = time.perf_counter()
    root = options.out_root or runs.DEFAULT_ROOT
    resumed = resumable_run(root, spec.name, options.resume, options) if options.resume else None
    cfg = grown_config(resumed.cfg, options) if resumed else cfg  # its own config, more units when asked
    if not cfg.threads:  # stored resolved: every unit of the run trains with the same thread count
        cfg = replace(cfg, threads=available_cores())
    hardware = check_before_folder(spec, cfg, options)
    probe = None
    if hardware and not resumed:  # stored resolved, as threads: every unit trains in one precision
        cfg, probe = resolved_precision(cfg, hardware)
    data, train = prepare_train_set(load_dataset(spec, options.data_dir), cfg)
    cfg = resolve_init_from(cfg, root, spec.name, folds_table(train))  # a bad source fails before the folder
    cfg = resolve_pseudo_from(cfg, root, spec.name, folds_table(train))
    folder = open_run_folder(root, spec, cfg, label, argv, resumed, train, data.files, options.kind)
    with run_log(folder, resume_command(spec.name, folder, options)):
        record_transfer(folder, cfg)
        if probe:
            log.info("%s", probe.description)
        wanted = [options.only] if options.only else all_units(cfg)
        todo = [key for key in wanted if not is_complete(folder, key)]
        if resumed:
            log_resumed(folder, cfg, todo)
        train_units(folder, cfg, todo, data, train, options)
        missing = missing_units(folder, cfg)
        if missing:
            log.info(
                "run %s: units still to train: %s (then: python run.py merge %s %s)",
                folder.name,
                describe_units(missing),
                spec.name,
                folder.name,
            )
            return folder
        finalise(folder, cfg, data, train, start)
    return folder


def log_resumed(folder: Path, cfg: Config, todo: list[UnitKey]) -> None:
    """What a resumed run kept and what it trains now: finished units are loaded, never trained again."""
    units = all_units(cfg)
    kept = sum(is_complete(folder, key) for key in units)
    log.info(
        "resuming run %s: %d of %d units finished and loaded; training %d now%s",
        folder.name,
        kept,
        len(units),
        len(todo),
        f" ({describe_units(todo)})" if todo else "",
    )


def open_run_folder(
    root: Path,
    spec,
    cfg: Config,
    label: str,
    argv: list[str],
    resumed,
    train: TrainSet,
    files: Sequence[DataFile] = (),
    kind: runs.RunKind = runs.RunKind.TRAINED,
) -> Path:
    """The resumed run's folder, checked against the data; or a new folder with its config, folds and the record
    of the data files read."""
    if resumed:
        check_same_folds(resumed.folder, train)
        runs.reopen_run(resumed.folder, argv)
        if any(getattr(cfg, name) != getattr(resumed.cfg, name) for name in GROWABLE):  # its units stay members
            runs.grow_run(resumed.folder, cfg.to_dict())
        return resumed.folder
    folder = runs.create_run_dir(root, spec.name, label)
    runs.start_run(folder, cfg.to_dict(), argv, label=label, kind=kind, data_files=files)
    runs.write_folds(folder, folds_table(train))
    return folder
