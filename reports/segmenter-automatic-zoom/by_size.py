"""Lesions outlined with no prompt (IoU ≥ 0.5, whatever the score), by the lesion's share of
the image, quartiles per site left out: where a second look at the region found pays.

    .venv/bin/python reports/segmenter-automatic-zoom/by_size.py --data ../shared/data \\
        one-pass=reports/segmenter-0.4.0 zoomed=reports/segmenter

Each NAME=FOLDER's `report.json` (`branet-train-segmenter`'s) is read; the masks come from
--data, as the segmenter's training reads them. Run from the repository root."""

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from branet_training.segmenter.data import load_masked_images
from branet_training.segmenter.report import FOUND_IOU

SITES = ("busi", "breast_lesions_usg", "bus_uclm")


def outlined_by_image(report: Path) -> dict[str, dict[str, bool]]:
    """Per left-out site, each lesion image's outlined (no prompt)."""
    sections = json.loads(report.read_text())
    return {
        name.removeprefix("leave-out-"): {
            s["image"]: s["iou"] >= FOUND_IOU
            for s in section["scores"]
            if s["mode"] == "none" and s["kind"] != "normal"
        }
        for name, section in sections.items()
        if name.startswith("leave-out-")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("runs", nargs="+", help="NAME=FOLDER")
    args = parser.parse_args()
    runs = {
        name: outlined_by_image(Path(folder) / "report.json")
        for name, folder in (run.split("=", 1) for run in args.runs)
    }
    areas = {
        image.name: float(image.image_and_mask()[1].mean())
        for image in load_masked_images([args.data / site for site in SITES], [])
    }
    print("| left out | lesion's share of the image | images | " + " | ".join(runs) + " |")
    print("|---|---|---|" + "---|" * len(runs))
    for site in sorted(next(iter(runs.values()))):
        names = sorted(next(iter(runs.values()))[site])
        share = np.array([areas[name] for name in names])
        edges = np.quantile(share, [0, 0.25, 0.5, 0.75, 1])
        for low, high in itertools.pairwise(edges):
            inside = [n for n, a in zip(names, share, strict=True) if low <= a <= high]
            cells = [f"{np.mean([run[site][n] for n in inside]):.1%}" for run in runs.values()]
            row = f"| {site} | {low:.1%}–{high:.1%} | {len(inside)} | " + " | ".join(cells)
            print(row + " |")


if __name__ == "__main__":
    main()
