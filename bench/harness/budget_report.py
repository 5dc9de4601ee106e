"""The budget benchmark's results: accuracy at each checkpoint, the winners, McNemar's test of each recipe
against the reference on the same rows, speed and curves; as JSON and as markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.results import markdown_table
from common import runs
from common.runs.stats import mcnemar

HOLDOUT = "holdout"  # the split's own holdout: the signal that picks


@dataclass(frozen=True)
class Trained:
    """One recipe's trained model as the results read it."""

    summary: dict[str, Any]  # what the results show (JSON)
    predicted: dict[int, dict[str, np.ndarray]]  # finished epoch -> set -> predicted labels (kept in memory)


# ---------------------------------------------------------------------------
# Checkpoints, winners and the paired tests against the reference
# ---------------------------------------------------------------------------


def minutes_label(minutes: float) -> str:
    return f"{minutes:g}"


def point_at(curve: list[dict[str, Any]], minutes: float) -> dict[str, Any] | None:
    """The last epoch finished within `minutes` of training (None when none had finished)."""
    finished = [point for point in curve if point["seconds"] <= minutes * 60]
    return finished[-1] if finished else None


def checkpoint_table(results: dict[str, dict], checkpoints: Sequence[float]) -> dict[str, dict]:
    """recipe -> checkpoint label -> {epoch, seconds, accuracy, extras} or None."""
    table = {}
    for name, result in results.items():
        points = {minutes_label(m): point_at(result["curve"], m) for m in checkpoints}
        keep = ("epoch", "seconds", "accuracy", "extras")
        table[name] = {label: p and {key: p[key] for key in keep} for label, p in points.items()}
    return table


def signal_value(point: dict[str, Any] | None, signal: str) -> float | None:
    if point is None:
        return None
    return point["accuracy"] if signal == HOLDOUT else point["extras"].get(signal)


def winners(table: dict[str, dict], signals: list[str]) -> dict[str, dict[str, str | None]]:
    """checkpoint label -> signal -> the recipe with the best accuracy on it (None when none had an epoch)."""
    labels = next(iter(table.values())).keys() if table else []
    picked = {}
    for label in labels:
        picked[label] = {}
        for signal in signals:
            scored = [(signal_value(row[label], signal), name) for name, row in table.items()]
            scored = [(value, name) for value, name in scored if value is not None]
            picked[label][signal] = max(scored, key=lambda pair: pair[0])[1] if scored else None
    return picked


def paired_test(ours: Trained, reference: Trained, minutes: float, signal: str, truth: np.ndarray) -> dict | None:
    """McNemar's exact test of a recipe against the reference on one set's rows, each at its last epoch
    within `minutes`: the gain, the rows only one of them got right, p, and whether the margin is a tie."""
    a, b = point_at(ours.summary["curve"], minutes), point_at(reference.summary["curve"], minutes)
    if a is None or b is None:
        return None
    result = mcnemar(ours.predicted[a["epoch"]][signal] == truth, reference.predicted[b["epoch"]][signal] == truth)
    return {
        "gain": round(result.acc_a - result.acc_b, 6),
        "only_recipe": result.only_a,
        "only_reference": result.only_b,
        "p_value": result.p_value,
        "tie": not result.significant,
    }


def comparisons(
    trained: dict[str, Trained], reference: str | None, checkpoints: Sequence[float], truth: dict[str, np.ndarray]
) -> dict[str, dict[str, dict[str, dict | None]]]:
    """signal -> recipe -> checkpoint label -> the paired test against the reference (empty until it trained)."""
    if reference is None or reference not in trained:
        return {}
    others = {name: result for name, result in trained.items() if name != reference}
    return {
        signal: {
            name: {minutes_label(m): paired_test(result, trained[reference], m, signal, labels) for m in checkpoints}
            for name, result in others.items()
        }
        for signal, labels in truth.items()
    }


# ---------------------------------------------------------------------------
# The budget benchmark's results: JSON and markdown
# ---------------------------------------------------------------------------


def results_document(
    header: dict[str, Any], trained: dict[str, Trained], truth: dict[str, np.ndarray], complete: bool
) -> dict[str, Any]:
    """Everything the bench measured; each recipe's FLOP/s share uses the matmul rate measured in this run."""
    rate = header["machine"]["matmul_gflops"]
    results = {name: result.summary for name, result in trained.items()}
    for result in results.values():
        result["flops_share"] = round(result["train_gflops_per_second"] / rate, 4) if rate else None
    table = checkpoint_table(results, header["checkpoints_minutes"])
    return {
        **header,
        "complete": complete,
        "recipes": results,
        "checkpoints": table,
        "winners": winners(table, header["signals"]),
        "comparisons": comparisons(trained, header["reference"], header["checkpoints_minutes"], truth),
    }


def accuracy_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def comparison_text(test: dict | None) -> str:
    if test is None:
        return "-"
    return f"{test['gain']:+.5f} (p = {test['p_value']:.2g}{', tie' if test['tie'] else ''})"


def checkpoint_section(document: dict[str, Any], signal: str) -> list[str]:
    """One table per signal: recipe x checkpoint accuracy with the epoch it came from; then each recipe's gain
    over the reference at the same training time, with McNemar's p (the benchmark's target)."""
    labels = [minutes_label(m) for m in document["checkpoints_minutes"]]
    rows = []
    for name, row in document["checkpoints"].items():
        cells = [(signal_value(row[label], signal), row[label]) for label in labels]
        rows.append([name] + [f"{accuracy_text(v)} (ep {p['epoch']})" if p else "-" for v, p in cells])
    for name, tests in document["comparisons"].get(signal, {}).items():
        rows.append([f"{name} - {document['reference']}", *[comparison_text(tests[label]) for label in labels]])
    title = "holdout accuracy" if signal == HOLDOUT else f"{signal} accuracy"
    columns = ["recipe", *[f"{label} min" for label in labels]]
    return [f"### {title} at T minutes of training", "", markdown_table(columns, rows)]


def speed_section(document: dict[str, Any]) -> list[str]:
    columns = ["recipe", "model", "params", "train rows", "epochs done / planned", "train s", "img/s", "steady img/s"]
    columns += ["train MFLOP/img", "train GFLOP/s", "share of matmul"]
    rows = []
    for name, r in document["recipes"].items():
        share = "-" if r["flops_share"] is None else f"{r['flops_share']:.1%}"
        cut = " (cut)" if r["stopped_by_budget"] else ""
        rows.append(
            [name, r["model"], f"{r['parameters']:,}", f"{r['train_rows']:,}"]
            + [f"{r['epochs_finished']} / {r['epochs_planned']}{cut}", f"{r['train_seconds']:.1f}"]
            + [f"{r['images_per_second']:,.0f}", f"{r['images_per_second_steady']:,.0f}"]
            + [f"{r['train_flops_per_image'] / 1e6:.2f}", f"{r['train_gflops_per_second']:.2f}", share]
        )
    return ["### Speed", "", markdown_table(columns, rows)]


def curve_section(document: dict[str, Any]) -> list[str]:
    lines = ["### Curves (one row per finished epoch)", ""]
    extras = [signal for signal in document["signals"] if signal != HOLDOUT]
    for name, r in document["recipes"].items():
        rows = [
            [p["epoch"], f"{p['seconds']:.1f}", accuracy_text(p["accuracy"])]
            + [accuracy_text(p["extras"].get(extra)) for extra in extras]
            + [f"{p['images_per_second']:,.0f}"]
            for p in r["curve"]
        ]
        lines += [f"**{name}**", "", markdown_table(["epoch", "seconds", HOLDOUT, *extras, "img/s"], rows), ""]
    return lines


def picked_text(document: dict[str, Any], label: str, signal: str) -> str:
    """`recipe (signal)`, noting when its margin over the reference is a tie."""
    picked = document["winners"][label][signal]
    test = document["comparisons"].get(signal, {}).get(picked, {}).get(label)
    tie = f"; a tie with {document['reference']}, p = {test['p_value']:.2g}" if test and test["tie"] else ""
    return f"{picked or '-'} ({signal}{tie})"


def winners_section(document: dict[str, Any]) -> list[str]:
    """Which recipe each signal picks at each checkpoint: the holdout decides; extra sets are a second opinion."""
    lines = [
        f"### Picked by: {HOLDOUT} accuracy"
        + "".join(f", with {s} as a second signal" for s in document["signals"][1:]),
        "",
    ]
    for label in document["winners"]:
        choices = ", ".join(picked_text(document, label, signal) for signal in document["signals"])
        lines.append(f"- at {label} min: {choices}")
    return lines


def header_section(document: dict[str, Any]) -> list[str]:
    m, split = document["machine"], document["split"]
    gpus = ", ".join(m["gpus"]) or "none"
    status = "" if document["complete"] else " (in progress: not every recipe has trained yet)"
    tested = "its gains tested with McNemar's exact test on the same rows, p >= 0.05 being a tie"
    reference = f"`{document['reference']}`, {tested}" if document["reference"] else "none"
    return [
        f"# Benchmark: {document['competition']}, {document['created']}{status}",
        "",
        f"`{document['command']}`",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, GPUs: {gpus}; load average at start {m['load_average']}",
        f"- Keras {m['keras']} on {m.get('backend', 'tensorflow')}; CPU flags: {m.get('cpu_flags', 'not recorded')}; "
        f"float32 matmul ({m['matmul_size']}^2): {m['matmul_gflops']:,.1f} GFLOP/s",
        f"- split: {split['holdout_rows']:,} holdout rows ({split['holdout_fraction']:.0%} of train.csv, stratified, "
        f"random_state {split['random_state']}); up to {split['train_rows']:,} training rows",
        f"- budget {document['budget_minutes']:g} min of training per recipe; overrides: "
        + (" ".join(document["overrides"]) or "none"),
        f"- recipes: {', '.join(f'`{spelled}`' for spelled in document['recipe_definitions'])}; reference: {reference}",
        "",
    ]


def markdown_report(document: dict[str, Any]) -> str:
    lines = header_section(document)
    for signal in document["signals"]:
        lines += [*checkpoint_section(document, signal), ""]
    lines += [*winners_section(document), "", *speed_section(document), "", *curve_section(document)]
    return "\n".join(lines).rstrip() + "\n"


def write_results(stem: Path, document: dict[str, Any]) -> None:
    runs.write_json(stem.with_suffix(".json"), document)
    runs.atomic_write_bytes(stem.with_suffix(".md"), markdown_report(document).encode())
