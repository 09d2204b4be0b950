"""Automatic mode of segmenter runs against 0.4.0's (`reports/segmenter`), fold by fold: each
run's threshold, lesions found and outlined, normals marked, and, where the fold has normals,
the lesions found at the threshold that marks no more of them than 0.4.0's does (so runs are
compared at one false-alarm rate, not at their own fitted thresholds). Rates are the
evaluation's own (`branet_training.segmenter.report.summary`).

    .venv/bin/python reports/compare_automatic.py reports/segmenter-weight-averaging [more]

Each folder's `*/report.json` are read, whichever sites they leave out. Run from the repository
root."""

import json
import sys
from pathlib import Path
from typing import Any

from branet_training.segmenter.data import NORMAL
from branet_training.segmenter.report import ImageScore, summary

BASELINE = Path("reports/segmenter-0.4.0/report.json")
HEADER = "| run | threshold | found | outlined | normals marked | found at 0.4.0's normals rate |"


def folds(report: Path) -> dict[str, dict[str, Any]]:
    sections = json.loads(report.read_text())
    return {name: section for name, section in sections.items() if name.startswith("leave-out-")}


def automatic_scores(section: dict[str, Any]) -> list[ImageScore]:
    return [ImageScore(**s) for s in section["scores"] if s["mode"] == "none"]


def rates(scores: list[ImageScore], threshold: float) -> dict[str, Any]:
    automatic: dict[str, Any] = summary(scores, threshold)["automatic"]
    return automatic


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def row(name: str, section: dict[str, Any], normals_rate: float | None) -> str:
    scores = automatic_scores(section)
    fitted = rates(scores, section["summary"]["automatic"]["threshold"])
    same_rate = "-"
    if normals_rate is not None and any(s.kind == NORMAL for s in scores):
        # the lowest threshold that marks no more of the normals than 0.4.0's does
        at = next(
            found
            for found in (rates(scores, t) for t in sorted({s.score for s in scores}))
            if found["normal_marked_rate"] <= normals_rate
        )
        same_rate = f"{at['lesion_found_rate']:.1%} (marks {at['normal_marked_rate']:.1%})"
    return (
        f"| {name} | {fitted['threshold']:.3f} | {percent(fitted['lesion_found_rate'])} "
        f"| {percent(fitted['lesion_outlined_rate'])} "
        f"| {percent(fitted['normal_marked_rate'])} | {same_rate} |"
    )


def main(folders: list[str]) -> None:
    baseline = folds(BASELINE)
    runs = {
        (Path(folder).name, fold): section
        for folder in folders
        for report in sorted(Path(folder).glob("*/report.json"))
        for fold, section in folds(report).items()
    }
    for fold in sorted({fold for _, fold in runs}):
        normals_rate = baseline[fold]["summary"]["automatic"]["normal_marked_rate"]
        print(f"## {fold}\n")
        print(HEADER)
        print("|---|---|---|---|---|---|")
        print(row("0.4.0", baseline[fold], normals_rate))
        for (name, run_fold), section in runs.items():
            if run_fold == fold:
                print(row(name, section, normals_rate))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
