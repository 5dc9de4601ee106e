#!/usr/bin/env python
"""Command line: parses arguments and dispatches; all work lives in common/.

python run.py kannada --folds 5
python run.py mnist --preset smoke
python run.py mnist --folds 5 --seeds 3 --epochs 30 lr=0.002
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from common.ground.quiet import load_keras_quietly, quiet_environment

quiet_environment()  # before any library loads: TensorFlow's and XLA's C++ logs off the terminal

from common.ground.config import ENSEMBLES, GROWABLE
from common.ground.errors import UserError, exit_process, exit_status
from common.ground.spec import COMPETITIONS
from common.training.backend import backend_name

SUB_COMMANDS = """sub-commands (python run.py COMMAND --help for each):
  compare COMP [A B]      every run best first; or does run A beat run B (McNemar)
  blend COMP A B ...      average runs' probabilities into a new run with its own submission
  report COMP [RUN]       re-draw a run's figures and report.html
  submit COMP [RUN]       upload a submission to Kaggle (kannada: push and submit its notebook)
  kernel COMP [RUN]       a Kaggle notebook and model dataset (code competitions: kannada)
  merge COMP RUN          finalise a run whose units were trained separately
  zoo COMP                every registered model on one split under one budget
  predict COMP RUN IMG... predict your own images with a run's ensemble
  tune COMP [key=value]   a hyper-parameter study (Optuna): every trial a run; table, plots, preset"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line via UserError, like every other user mistake
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


def train_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="run.py",
        description="Train a K-fold, multi-seed CNN ensemble on a Kaggle digit competition and write submission.csv.",
        epilog="Any config key can be set as key=value (see configs/*.yaml).\n\n" + SUB_COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("competition", help=f"one of: {', '.join(COMPETITIONS)}")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lr=0.002 model=small")
    parser.add_argument("--folds", type=int, help="number of stratified folds")
    parser.add_argument("--seeds", type=int, help="models per fold, each with its own seed")
    parser.add_argument("--epochs", type=int, help="epochs per model")
    parser.add_argument(
        "--full-models", type=int, help="models trained on every training row (no held-out fold), beside the folds"
    )
    parser.add_argument("--preset", help="a file in configs/presets/ (e.g. smoke)")
    parser.add_argument("--config", help="a YAML file of overrides")
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    parser.add_argument("--out", type=Path, help="where run folders go (default: submissions/)")
    parser.add_argument("--resume", metavar="RUN_ID", help="continue a run (id, prefix or 'latest' unfinished)")
    parser.add_argument(
        "--fold", type=fold_argument, help="train only this fold's unit (with --seed); 'all': a full-data model's"
    )
    parser.add_argument("--seed", type=int, help="with --fold: the seed index (0..seeds-1) of the unit to train")
    parser.add_argument("--scheduler", help="send units to a dask.distributed scheduler ADDRESS, or local:N workers")
    parser.add_argument(
        "--init-from",
        metavar="RUN",
        help="start every model from another run's weights: COMPETITION/RUN (e.g. mnist/latest) or a run folder",
    )
    parser.add_argument(
        "--freeze-convs", action="store_true", help="with --init-from: keep the conv layers fixed, train a new head"
    )
    parser.add_argument(
        "--pseudo-from",
        metavar="RUN",
        help="pseudo-labelling: also train on the test images this finished run (same folds) is sure about",
    )
    return parser


FULL_DATA_FOLD = "all"  # --fold all: a full-data model, whose unit key has no fold


def fold_argument(text: str) -> int | str:
    """--fold K, or --fold all."""
    if text == FULL_DATA_FOLD:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fold number or 'all', got {text!r}") from None


RUN_HELP = "run id or unique prefix (default: the latest run; docs/usage.md, 'Which run a command takes')"


def train(argv: list[str]) -> None:
    from common.ground.checks import check_run_config
    from common.ground.config_files import chosen_keys, load_config
    from common.ground.spec import get_spec
    from common.runs.layout import UnitKey

    args = train_parser().parse_intermixed_args(argv)
    spec = get_spec(args.competition)
    keys = ("folds", "seeds", "epochs", "full_models")
    shortcuts = [f"{key}={value}" for key in keys if (value := getattr(args, key)) is not None]
    shortcuts += [f"init_from={args.init_from}"] if args.init_from else []
    shortcuts += ["freeze_convs=true"] if args.freeze_convs else []
    shortcuts += [f"pseudo_from={args.pseudo_from}"] if args.pseudo_from else []
    growth = {key: getattr(args, key) for key in GROWABLE if getattr(args, key) is not None}
    only_growth = len(shortcuts) == len(growth) and not args.overrides
    if args.resume and (args.preset or args.config or not only_growth):
        raise UserError(
            "--resume continues a run with its own saved config: drop the overrides (only --seeds N and"
            " --full-models N may grow it), or start a new run"
        )
    cfg, label = load_config(spec.name, args.preset, args.config, shortcuts + args.overrides)

    if (args.fold is None) != (args.seed is None):
        raise UserError("--fold and --seed go together: they name one unit")
    only = UnitKey(None if args.fold == FULL_DATA_FOLD else args.fold, args.seed) if args.seed is not None else None
    if not args.resume:  # a resumed run keeps its own config
        check_run_config(spec, cfg, chosen_keys(args.config, args.overrides, spec.name))  # before Keras and data
    load_keras_quietly()  # late: TensorFlow takes seconds to load
    from common.execution.pipeline import RunOptions, run_competition

    run_competition(
        spec, cfg, label, argv, RunOptions(args.data_dir, args.out, args.resume, only, args.scheduler, **growth)
    )


def command_parser(name: str, description: str) -> argparse.ArgumentParser:
    """A sub-command's parser with the arguments every run-folder command shares."""
    parser = Parser(prog=f"run.py {name}", description=description)
    parser.add_argument("competition", help=f"one of: {', '.join(COMPETITIONS)}")
    parser.add_argument("--out", type=Path, help="where run folders are (default: submissions/)")
    return parser


def report(argv: list[str]) -> None:
    parser = command_parser("report", "Write figures/*.png and report.html into a finished run's folder.")
    parser.add_argument("run", nargs="?", help=RUN_HELP)
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    args = parser.parse_args(argv)
    from common.commands.report import report
    from common.ground.spec import get_spec
    from common.runs import DEFAULT_ROOT, choose_run

    choice = choose_run(args.out or DEFAULT_ROOT, get_spec(args.competition).name, args.run)
    print(choice.line)
    print(f"report: {report(choice.run.require_finished(), args.data_dir)}")


TRANSDUCTIVE_HELP = (
    "the notebook fine-tunes every model on the hidden test images the ensemble is sure of, then predicts again"
)
ADABN_HELP = "the notebook re-estimates every model's BatchNorm statistics on the hidden test images (no labels)"


def submit(argv: list[str]) -> None:
    parser = command_parser(
        "submit",
        "Check a finished run's submission.csv against sample_submission.csv and upload it to Kaggle; for a code "
        "competition (kannada): send its models as a dataset, push its notebook, wait for it, submit its output.",
    )
    parser.add_argument("run", nargs="?", help=RUN_HELP)
    parser.add_argument(
        "-m", "--message", help="a note for Kaggle; the run id and its submitted models' score are added to it"
    )
    parser.add_argument("--dry-run", action="store_true", help="do every check and show what would be sent; no upload")
    parser.add_argument(
        "--yes", action="store_true", help="submit a smoke or subset run, or one scoring below the best, all the same"
    )
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs (for sample_submission.csv)")
    parser.add_argument("--wait-minutes", type=float, help="code competitions: longest wait (default 30)")
    parser.add_argument("--dest", type=Path, help="code competitions: the notebook folder (default: kernel's)")
    parser.add_argument("--transductive", action="store_true", help=TRANSDUCTIVE_HELP)
    parser.add_argument("--adabn", action="store_true", help=ADABN_HELP)
    args = parser.parse_args(argv)
    from common.commands.submit import NotebookOptions, submit
    from common.ground.spec import get_spec
    from common.runs import DEFAULT_ROOT
    from common.runs.notebook import NotebookLevers

    waits = {} if args.wait_minutes is None else {"wait_minutes": args.wait_minutes}
    levers = NotebookLevers.from_flags(args.transductive, args.adabn)
    options = NotebookOptions(args.dry_run, args.message, dest=args.dest, levers=levers, yes=args.yes, **waits)
    print(submit(args.out or DEFAULT_ROOT, get_spec(args.competition), args.run, args.data_dir, options))


def kernel(argv: list[str]) -> None:
    parser = command_parser(
        "kernel", "Write a Kaggle notebook and a dataset of a run's models, for code competitions such as kannada."
    )
    parser.add_argument("run", nargs="?", help=RUN_HELP)
    parser.add_argument("--dest", type=Path, help="folder to write (default: kernels/<competition>-<run id>/)")
    parser.add_argument("--transductive", action="store_true", help=TRANSDUCTIVE_HELP)
    parser.add_argument("--adabn", action="store_true", help=ADABN_HELP)
    args = parser.parse_args(argv)
    from common.commands.kernel import kernel
    from common.ground.spec import get_spec
    from common.runs import DEFAULT_ROOT, choose_run
    from common.runs.notebook import NotebookLevers

    levers = NotebookLevers.from_flags(args.transductive, args.adabn)
    root, spec = args.out or DEFAULT_ROOT, get_spec(args.competition)
    choice = choose_run(root, spec.name, args.run)
    print(choice.line)
    print(kernel(root, spec, choice.run.run_id, args.dest, levers))


def merge(argv: list[str]) -> None:
    parser = command_parser("merge", "Join a run's separately trained units into its OOF, test and submission.")
    parser.add_argument("run", help="run id or unique prefix")
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    args = parser.parse_args(argv)
    from common.ground.spec import get_spec

    load_keras_quietly()
    from common.commands.merge import merge_run

    merge_run(get_spec(args.competition), args.run, args.data_dir, args.out)


def compare(argv: list[str]) -> None:
    parser = command_parser(
        "compare",
        "List every run of the competition, best OOF accuracy first (also written to compare.csv); "
        "with two runs, test whether A really beats B (McNemar's exact test on the train rows both scored, then on "
        "each extra set both predicted, such as Dig-MNIST).",
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="two run ids (a unique prefix, or 'latest') to compare")
    parser.add_argument("--data-dir", help="folder holding the competition files (the extra sets' labels)")
    parser.add_argument(
        "--ensemble",
        choices=ENSEMBLES,
        help="on the extra sets, each run's fold models, full-data models or all its models (default: what each submits)",
    )
    args = parser.parse_args(argv)
    if len(args.runs) not in (0, 2):
        raise UserError(f"compare: give no run (the table of all runs) or exactly two, not {len(args.runs)}")
    if args.ensemble and not args.runs:
        raise UserError(f"compare --ensemble {args.ensemble}: give the two runs to compare")
    from common.commands.compare import compare_pair, print_compare
    from common.ground.spec import get_spec
    from common.runs import DEFAULT_ROOT

    competition, root = get_spec(args.competition).name, args.out or DEFAULT_ROOT
    if args.runs:
        print(compare_pair(root, competition, *args.runs, data_dir=args.data_dir, group=args.ensemble))
    else:
        print_compare(root, competition)


def blend(argv: list[str]) -> None:
    parser = command_parser(
        "blend",
        "Average several finished runs' probabilities (OOF, test, extra sets) into a new 'blend' run folder "
        "with its own metrics and submission.csv. The runs must have scored the same train rows: runs that "
        "did not (another max_train_rows, seed with it, holdout or extra_train) are refused.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="two or more run ids (a unique prefix, or 'latest')")
    parser.add_argument(
        "--weights",
        nargs="+",
        metavar="W",
        help="one weight per run (default: equal); or 'oof': weights fitted on the runs' OOF (their holdout when "
        "they have no OOF) with scipy's SLSQP, scored by cross-validation over the folds",
    )
    parser.add_argument(
        "--rank", action="store_true", help="average each class's rank over a set's rows instead of probabilities"
    )
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    args = parser.parse_args(argv)
    from common.commands.blend import blend_runs
    from common.ground.spec import get_spec
    from common.runs import DEFAULT_ROOT

    competition, root = get_spec(args.competition).name, args.out or DEFAULT_ROOT
    blend_runs(root, competition, args.runs, args.weights, args.data_dir, rank=args.rank, argv=["blend", *argv])


def zoo(argv: list[str]) -> None:
    parser = command_parser(
        "zoo",
        "Train several registered models (the competition's config with model=<name>) on the same fixed 90/10 "
        "split of train.csv for the same epochs and write a comparison table "
        "(submissions/<competition>/zoo/zoo.md and zoo.csv).",
    )
    parser.add_argument("--models", help="comma-separated model names (default: every registered model)")
    parser.add_argument("--epochs", type=int, help="epochs per model (default: the competition's config)")
    parser.add_argument("--max-train-rows", type=int, default=0, help="a stratified subset of N rows (0 = all)")
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    args = parser.parse_args(argv)
    from common.ground.spec import get_spec

    spec = get_spec(args.competition)  # before TensorFlow loads: a typo fails at once
    models = [name.strip() for name in args.models.split(",") if name.strip()] if args.models else None
    load_keras_quietly()  # late: TensorFlow takes seconds to load
    from common.commands.zoo import run_zoo

    run_zoo(spec, models, args.epochs, args.max_train_rows, args.data_dir, args.out)


def predict(argv: list[str]) -> None:
    parser = command_parser(
        "predict", "Predict the digit in your own images (photos or scans, any size) with a finished run's ensemble."
    )
    parser.add_argument("run", help="run id, unique prefix, or 'latest' (docs/usage.md, 'Which run a command takes')")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...), one digit each")
    parser.add_argument("--json", action="store_true", help="one JSON object per line: path, label, top3")
    args = parser.parse_args(argv)
    from common.commands.predict import format_predictions, predict_images
    from common.ground.spec import get_spec
    from common.runs import DEFAULT_ROOT, choose_run

    choice = choose_run(args.out or DEFAULT_ROOT, get_spec(args.competition).name, args.run)
    print(choice.line, file=sys.stderr if args.json else sys.stdout)  # --json: stdout holds JSON lines only
    print(format_predictions(predict_images(choice.run, args.images), args.json))


def tune(argv: list[str]) -> None:
    parser = command_parser(
        "tune",
        "A hyper-parameter study (Optuna): every trial an ordinary run; the study in submissions/<competition>/"
        "tune/<study>/ with its table, plots, page and the best trial as a preset (in configs/presets/ too with "
        "--save-preset). The same command continues it.",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides under the searched keys")
    parser.add_argument("--space", help="configs/search/NAME.yaml or a YAML file (default: the competition's)")
    parser.add_argument("--study", help="the study's name (default: COMPETITION-SPACE)")
    parser.add_argument("--storage", metavar="URL", help="an Optuna database URL (default: SQLite in the study folder)")
    parser.add_argument(
        "--objective",
        choices=("submitted", "oof", "holdout"),
        default="submitted",
        help="what trials are picked on (default: the score of the models each trial submits)",
    )
    parser.add_argument(
        "--judged-weight",
        "--dig-weight",
        type=float,
        default=0.0,
        metavar="W",
        help="weigh the competition's judged set's picking half into the score by W (kannada: Dig-MNIST)",
    )
    parser.add_argument("--trials", type=int, help="trials to add (default 20 without --timeout)")
    parser.add_argument("--timeout", type=float, metavar="MINUTES", help="start no trial after this many minutes")
    parser.add_argument("--scheduler", help="send each trial's units to a dask.distributed ADDRESS, or local:N")
    parser.add_argument("--preset", help="a file in configs/presets/ under every trial")
    parser.add_argument("--config", help="a YAML file of overrides under every trial")
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    parser.add_argument(
        "--save-preset", action="store_true", help="also write the best trial's preset into configs/presets/"
    )
    args = parser.parse_intermixed_args(argv)
    load_keras_quietly()
    from common.commands.tune import StudyRequest, run_study

    options = {key: getattr(args, key) for key in ("space", "study", "storage", "objective", "judged_weight", "trials")}
    options |= {key: getattr(args, key) for key in ("timeout", "scheduler", "preset", "config", "data_dir", "out")}
    options["save_preset"] = args.save_preset
    run_study(StudyRequest(args.competition, args.overrides, **options, argv=["tune", *argv]))


# Sub-command name -> function(argv). Anything else on the command line is a competition to train.
COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "compare": compare,
    "blend": blend,
    "report": report,
    "submit": submit,
    "kernel": kernel,
    "merge": merge,
    "zoo": zoo,
    "predict": predict,
    "tune": tune,
}


def main(argv: list[str]) -> int:
    return exit_status(lambda: dispatch(argv))


def dispatch(argv: list[str]) -> None:
    backend_name()  # an unknown KERAS_BACKEND is one line here, not Keras' traceback on import
    if argv and argv[0] in COMMANDS:
        COMMANDS[argv[0]](argv[1:])
    else:
        train(argv)


if __name__ == "__main__":
    exit_process(main(sys.argv[1:]))
