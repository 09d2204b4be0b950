"""0.4.0 against weight averaging on the folds both ran: each run's headline at its own fitted
threshold, and the lesions found at the threshold that marks as many of BUSI's normals as
0.4.0's does (so the two are compared at one false-alarm rate, not at two fitted thresholds).
Reads the committed reports; run from the repository root."""

import json
from pathlib import Path

import numpy as np

REPORTS = Path("reports")
RUNS = {
    "leave-out-breast_lesions_usg": {
        "0.4.0": "segmenter/report.json",
        "weights averaged, last 8 epochs": "segmenter-weight-averaging/breast/report.json",
    },
    "leave-out-bus_uclm": {
        "0.4.0": "segmenter/report.json",
        "weights averaged, last 8 epochs": "segmenter-weight-averaging/bus_uclm/report.json",
    },
    "leave-out-busi": {
        "0.4.0": "segmenter/report.json",
        "weights averaged, last 8 epochs": "segmenter-weight-averaging/busi/report.json",
    },
}


def automatic(report: str, fold: str) -> tuple[dict[str, float], list[dict[str, float]]]:
    section = json.loads((REPORTS / report).read_text())[fold]
    rows = [s for s in section["scores"] if s["mode"] == "none"]
    return section["summary"]["automatic"], rows


def found_at(rows: list[dict[str, float]], threshold: float) -> float:
    lesions = [r for r in rows if r["kind"] != "normal"]
    return float(np.mean([r["iou"] >= 0.5 and r["score"] >= threshold for r in lesions]))


def marked_at(rows: list[dict[str, float]], threshold: float) -> float:
    return float(np.mean([r["score"] >= threshold for r in rows if r["kind"] == "normal"]))


for fold, runs in RUNS.items():
    print(f"## {fold}\n")
    print("| run | threshold | found | outlined | normals marked | found at 0.4.0's normals rate |")
    print("|---|---|---|---|---|---|")
    _, base_rows = automatic(runs["0.4.0"], fold)
    for name, report in runs.items():
        headline, rows = automatic(report, fold)
        same_rate = "-"
        if any(r["kind"] == "normal" for r in rows):
            target = marked_at(base_rows, automatic(runs["0.4.0"], fold)[0]["threshold"])
            candidates = sorted({r["score"] for r in rows})
            # the lowest threshold that marks no more of the normals than 0.4.0's does
            threshold = next(t for t in candidates if marked_at(rows, t) <= target)
            same_rate = f"{found_at(rows, threshold):.1%} (marks {marked_at(rows, threshold):.1%})"
        normals = headline["normal_marked_rate"]
        print(
            f"| {name} | {headline['threshold']:.3f} | {headline['lesion_found_rate']:.1%} "
            f"| {headline['lesion_outlined_rate']:.1%} "
            f"| {'-' if normals is None else f'{normals:.1%}'} | {same_rate} |"
        )
    print()
