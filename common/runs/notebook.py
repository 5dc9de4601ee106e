"""A Kaggle notebook (script kernel) and a dataset of a run's models, for code competitions.

Code competitions (Kannada-MNIST) take no uploaded CSV: Kaggle reruns a notebook on the hidden test set.
`write_kernel` writes a folder ready for the official kaggle CLI:

    kernels/<competition>-<run_id>/
      kernel-metadata.json     for `kaggle kernels push -p FOLDER`
      predict.py               the notebook: standalone, internet off, Kaggle's own Keras
      dataset/                 for `kaggle datasets create -p FOLDER/dataset`
        dataset-metadata.json
        ensemble.json          the spec's facts (test file, id column, submission columns) and the models,
                               each with its weight in the ensemble and its test-time views
        f<K>-s<S>.keras        every unit's model (a blend's: <source run id>-f<K>-s<S>.keras)

The same folder runs here: `python predict.py INPUT_ROOT` reads INPUT_ROOT/<slug>/test.csv and dataset/.
`python run.py kernel COMP` writes it (common/commands/kernel.py); `python run.py submit kannada` writes it and
sends it through the kaggle package's API. It lives with the run folder, below the commands, so both can use it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slugify import slugify  # python-slugify, the kaggle package's own dependency and title -> slug rule

from common import runs
from common.ground.config_files import load_transductive
from common.ground.spec import CompetitionSpec
from common.runs import PROJECT_ROOT, Member, Run, atomic_write_bytes, write_json
from common.runs.units import unit_backends

TEMPLATE = Path(__file__).with_name("notebook_template.py")
DEFAULT_KERNELS_DIR = PROJECT_ROOT / "kernels"
SCRIPT_NAME = "predict.py"
DATASET_DIR = "dataset"
KERNEL_METADATA = "kernel-metadata.json"  # `kaggle kernels push -p FOLDER` reads it
DATASET_METADATA = "dataset-metadata.json"  # `kaggle datasets create -p FOLDER` reads it; never uploaded itself
FACTS_FILE = "ensemble.json"  # the script looks for this file name under /kaggle/input
RUN_ID_LINE = 'RUN_ID = ""'
NOTEBOOK_SUBMISSION = "submission.csv"  # what the script writes: into /kaggle/working on Kaggle, else beside it
USERNAME_PLACEHOLDER = "your-kaggle-username"
MAX_SLUG = 50  # Kaggle's limit for dataset slugs and titles


# ---------------------------------------------------------------------------
# Names and metadata
# ---------------------------------------------------------------------------


def kaggle_username() -> str:
    return os.environ.get("KAGGLE_USERNAME") or USERNAME_PLACEHOLDER


def kernel_slug(spec: CompetitionSpec, run: Run) -> str:
    return slugify(f"{spec.name} {run.run_id}", max_length=MAX_SLUG)


def dataset_slug(spec: CompetitionSpec, run: Run) -> str:
    return slugify(f"{spec.name} models {run.run_id}", max_length=MAX_SLUG)


def kernel_metadata(spec: CompetitionSpec, run: Run, username: str) -> dict[str, Any]:
    # The title is the slug itself, so `kaggle kernels push` finds title and id in agreement.
    return {
        "id": f"{username}/{kernel_slug(spec, run)}",
        "title": kernel_slug(spec, run),
        "code_file": SCRIPT_NAME,
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": False,
        "enable_tpu": False,
        "enable_internet": False,  # code competitions run notebooks offline
        "dataset_sources": [f"{username}/{dataset_slug(spec, run)}"],
        "competition_sources": [spec.slug],
        "kernel_sources": [],
        "model_sources": [],
    }


def dataset_metadata(spec: CompetitionSpec, run: Run, username: str) -> dict[str, Any]:
    slug = dataset_slug(spec, run)
    return {"title": slug, "id": f"{username}/{slug}", "licenses": [{"name": "CC0-1.0"}]}


@dataclass(frozen=True)
class DatasetModel:
    """One model of the notebook's ensemble: its saved file, its name in the dataset, its share of the
    ensemble (a member's weight over its models) and its test-time views."""

    file: Path
    name: str
    weight: float
    tta: int


def dataset_models(run: Run) -> list[DatasetModel]:
    """The run's ensemble as the notebook computes it: each member's models averaged, the members weighted
    (a trained run: one member of weight 1). A blend's model names start with their source run's id."""
    members = run.members()
    models = []
    for member in members:
        files = member.model_files
        prefix = "" if member.run.folder == run.folder else f"{member.run.run_id}-"
        models += [
            DatasetModel(f, f"{prefix}{f.parent.name}.keras", member.weight / len(files), member.tta) for f in files
        ]
    return models


def transductive_settings(run: Run, overrides: dict[str, Any] | None) -> dict[str, float]:
    """configs/transductive.yaml with `overrides`, plus the run's own affine ranges for the round's augmentation
    (a blend: its first source's)."""
    cfg = run.members()[0].run.cfg
    ranges = {"rotate": float(cfg.rotate), "shift": float(cfg.shift), "scale": float(cfg.scale)}
    return dataclasses.asdict(load_transductive(overrides)) | ranges


@dataclass(frozen=True)
class NotebookLevers:
    """What the notebook does with the hidden test images beside predicting them; both adapt the models to the
    very images they predict, so no labelled set here can judge them (docs/kaggle.md): off by default.
    `transductive`: the round's settings over configs/transductive.yaml ({} for its values), None for no round;
    `adabn`: re-estimate every BatchNorm layer's statistics on the test images before predicting."""

    transductive: dict[str, Any] | None = None
    adabn: bool = False

    @classmethod
    def from_flags(cls, transductive: bool, adabn: bool) -> NotebookLevers:
        """The levers that `--transductive` (the round with configs/transductive.yaml's values) and `--adabn` ask for."""
        return cls({} if transductive else None, adabn)

    @property
    def flags(self) -> list[str]:
        """The command-line flags that ask for these levers."""
        return [flag for flag, on in (("--transductive", self.transductive is not None), ("--adabn", self.adabn)) if on]

    def said(self) -> str:
        """The levers in words, for a dry run's first line: "" when the notebook predicts plainly."""
        names = {"--adabn": "AdaBN", "--transductive": "its transductive round"}
        return f" (the notebook with {' and '.join(names[flag] for flag in self.flags)})" if self.flags else ""


def ensemble_facts(
    spec: CompetitionSpec, run: Run, models: list[DatasetModel], levers: NotebookLevers = NotebookLevers()
) -> dict[str, Any]:
    """What the script needs to know of the competition, so one script serves every spec; `levers`: the round's
    resolved settings (None for no round) and AdaBN."""
    return {
        "run_id": run.run_id,
        "competition": spec.name,
        "slug": spec.slug,
        "test_file": spec.test_file,
        "train_file": spec.train_file,  # the transductive round's labelled rows
        "label_column": spec.label_column,
        "test_id_column": spec.test_id_column,  # None: ids are first_id + row number
        "first_id": spec.first_id,
        "submission_columns": list(spec.submission_columns),
        "models": [model.name for model in models],
        "weights": [model.weight for model in models],  # each model's share of the ensemble, summing to 1
        "tta": [model.tta for model in models],  # one-pixel shifts averaged per model, as its run predicted
        "oof_accuracy": run.metrics().oof_accuracy,
        "trained_with": trained_with(run.members()),  # the script prints these beside the versions it runs under
        "transductive": levers.transductive,
        "adabn": levers.adabn,
    }


def trained_with(members: list[Member]) -> dict[str, Any]:
    """The Keras version the models were saved with (run.json) and each backend their units trained on."""
    keras, backends = set(), {}
    for member in members:
        versions = member.run.record.versions
        keras.add(versions.get("keras", "unknown"))
        backends |= {name: versions.get(name, "unknown") for name in unit_backends(member.run.folder)}
    return {"keras": ", ".join(sorted(keras)), "backends": dict(sorted(backends.items()))}


# ---------------------------------------------------------------------------
# Writing the folder
# ---------------------------------------------------------------------------


def write_dataset(
    folder: Path, spec: CompetitionSpec, run: Run, username: str, levers: NotebookLevers = NotebookLevers()
) -> None:
    """The run's models, flat (`kaggle datasets create` skips sub-folders), plus ensemble.json."""
    models = dataset_models(run)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in set(folder.glob("*.keras")) - {folder / model.name for model in models}:
        stale.unlink()  # a model of an earlier write into the same folder would join the ensemble
    for model in models:
        partial = folder / f".{model.name}.partial"
        shutil.copyfile(model.file, partial)
        partial.replace(folder / model.name)
    write_json(folder / FACTS_FILE, ensemble_facts(spec, run, models, levers))
    write_json(folder / DATASET_METADATA, dataset_metadata(spec, run, username))


def write_script(folder: Path, run: Run) -> Path:
    template = TEMPLATE.read_text()
    if template.count(RUN_ID_LINE) != 1:
        raise RuntimeError(f"{TEMPLATE}: expected one line {RUN_ID_LINE!r}")
    script = folder / SCRIPT_NAME
    atomic_write_bytes(script, template.replace(RUN_ID_LINE, f"RUN_ID = {run.run_id!r}").encode())
    return script


def write_kernel(
    root: Path,
    spec: CompetitionSpec,
    run_id: str | None = None,
    out_dir: Path | None = None,
    levers: NotebookLevers = NotebookLevers(),
) -> Path:
    """Writes the notebook folder for a finished run (default: the latest); returns the folder. `levers`: what
    the notebook does with the test images beside predicting them (none by default)."""
    run = runs.finished_run(root, spec.name, run_id)
    folder = Path(out_dir) if out_dir else DEFAULT_KERNELS_DIR / f"{spec.name}-{run.run_id}"
    username = kaggle_username()
    if levers.transductive is not None:  # the round's overrides, resolved over configs/transductive.yaml
        levers = dataclasses.replace(levers, transductive=transductive_settings(run, levers.transductive))
    write_dataset(folder / DATASET_DIR, spec, run, username, levers)
    write_script(folder, run)
    write_json(folder / KERNEL_METADATA, kernel_metadata(spec, run, username))
    return folder
