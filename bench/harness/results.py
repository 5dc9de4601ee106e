"""Result files of the benchmarks: the machine they ran on, markdown tables, JSON and markdown side by side."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from common import runs
from common.ground.paths import PROJECT_ROOT
from common.ground.spec import COMPETITIONS
from common.training.backend import cpu_flags, cpu_model

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"


def machine_description(matmul_rate: float, matmul_size: int) -> dict[str, Any]:
    """CPU, cores, backend, GPUs, load average and versions, with the float32 matmul rate measured now."""
    import keras

    from common.training.backend import backend_name, gpus

    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "backend": backend_name(),
        "gpus": [name for name, _ in gpus(backend_name(), deterministic=False)],
        # Other work on the machine slows every recipe alike but lowers the absolute numbers: recorded.
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "versions": runs.package_versions(),
        "keras": keras.__version__,
        "matmul_size": matmul_size,
        "matmul_gflops": round(matmul_rate, 1),
    }


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (pandas' to_markdown, tabulate's pipe format): cells as given, unpadded, never reparsed
    as numbers (0.90000 stays 0.90000)."""
    frame = pd.DataFrame([[str(cell) for cell in row] for row in rows], columns=list(columns), dtype=object)
    return frame.to_markdown(index=False, tablefmt="pipe", stralign=None, numalign=None, disable_numparse=True)


def provenance(command: str) -> dict[str, Any]:
    """What every result file states about itself: when, by which command, on which CPU, at which commit."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "cpu_flags": cpu_flags()},
        "git_commit": runs.git_commit(),
    }


def write_result_files(out: Path, stem: str, document: dict[str, Any], markdown: str) -> Path:
    """`out/<stem>-<UTC stamp>.json` and `.md`, written atomically; prints the markdown, returns its path."""
    path = out / f"{stem}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.md"
    runs.write_json(path.with_suffix(".json"), document)
    runs.atomic_write_bytes(path, markdown.encode())
    print(markdown)
    return path


def finished_run_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The arguments of a benchmark that reads one finished run: the competition, the run, where the data, the
    run folders and the result files are."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("competition", choices=list(COMPETITIONS))
    parser.add_argument("run", nargs="?", help="run id or unique prefix (default: the latest finished run)")
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    parser.add_argument("--out", type=Path, help="where run folders are (default: submissions/)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the tables go (default: %(default)s)")
    return parser
