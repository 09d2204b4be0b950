"""Automatic mode of segmenter runs against 0.4.0's (`reports/segmenter`), fold by fold: each
run's threshold, lesions found and outlined, normals marked, and, where the fold has normals,
the lesions found at the threshold that marks no more of them than 0.4.0's does (so runs are
compared at one false-alarm rate, not at their own fitted thresholds).

    python reports/compare_automatic.py reports/segmenter-weight-averaging [more report folders]

Each folder's `*/report.json` are read, whichever sites they leave out. Run from the repository
root."""

import json
import sys
from pathlib import Path
from typing import Any

BASELINE = Path("reports/segmenter/report.json")
Rows = list[dict[str, Any]]
HEADER = "| run | threshold | found | outlined | normals marked | found at 0.4.0's normals rate |"


def folds(report: Path) -> dict[str, dict[str, Any]]:
    sections = json.loads(report.read_text())
    return {name: section for name, section in sections.items() if name.startswith("leave-out-")}


def automatic(section: dict[str, Any]) -> tuple[dict[str, Any], Rows]:
    rows = [s for s in section["scores"] if s["mode"] == "none"]
    return section["summary"]["automatic"], rows


def found_at(rows: Rows, threshold: float) -> float:
    lesions = [r for r in rows if r["kind"] != "normal"]
    return sum(r["iou"] >= 0.5 and r["score"] >= threshold for r in lesions) / len(lesions)


def marked_at(rows: Rows, threshold: float) -> float:
    normals = [r for r in rows if r["kind"] == "normal"]
    return sum(r["score"] >= threshold for r in normals) / len(normals)


def row(name: str, section: dict[str, Any], baseline: dict[str, Any]) -> str:
    headline, rows = automatic(section)
    same_rate = "-"
    if any(r["kind"] == "normal" for r in rows):
        base_headline, base_rows = automatic(baseline)
        target = marked_at(base_rows, base_headline["threshold"])
        # the lowest threshold that marks no more of the normals than 0.4.0's does
        threshold = next(
            t for t in sorted({r["score"] for r in rows}) if marked_at(rows, t) <= target
        )
        same_rate = f"{found_at(rows, threshold):.1%} (marks {marked_at(rows, threshold):.1%})"
    normals = headline["normal_marked_rate"]
    return (
        f"| {name} | {headline['threshold']:.3f} | {headline['lesion_found_rate']:.1%} "
        f"| {headline['lesion_outlined_rate']:.1%} "
        f"| {'-' if normals is None else f'{normals:.1%}'} | {same_rate} |"
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
        print(f"## {fold}\n")
        print(HEADER)
        print("|---|---|---|---|---|---|")
        print(row("0.4.0", baseline[fold], baseline[fold]))
        for (name, run_fold), section in runs.items():
            if run_fold == fold:
                print(row(name, section, baseline[fold]))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
