"""How often models of different recipes outline the same lesions with no prompt: for each pair
of runs on a left-out site, the share of its lesion images either outlines (IoU >= 0.5), which
bounds what any ensemble of the two could outline, and the share a majority of all outlines.
Reads the committed reports' per-image scores; run from the repository root."""

import itertools
import json
from pathlib import Path

import numpy as np

REPORTS = Path("reports")
RUNS = {
    "leave-out-breast_lesions_usg": {
        "0.4.0": "segmenter/report.json",
        "encoder lr x0.3": "segmenter-encoder-lr/x0.3/report.json",
        "encoder lr x0.03": "segmenter-encoder-lr/x0.03/report.json",
        "7 frozen blocks": "segmenter-encoder-lr/frozen7/report.json",
        "batch 8": "segmenter-encoder-lr/batch8/report.json",
        "wide geometry": "segmenter-augment-geometry/breast_lesions_usg/report.json",
        "context layer": "segmenter-detector-context/breast/report.json",
    },
    "leave-out-busi": {
        "0.4.0": "segmenter/report.json",
        "wide geometry": "segmenter-augment-geometry/busi/report.json",
        "context layer": "segmenter-detector-context/busi/report.json",
    },
}


def outlined(report: str, fold: str) -> dict[str, bool]:
    scores = json.loads((REPORTS / report).read_text())[fold]["scores"]
    return {
        s["image"]: s["iou"] >= 0.5 for s in scores if s["mode"] == "none" and s["kind"] != "normal"
    }


for fold, runs in RUNS.items():
    per_run = {name: outlined(report, fold) for name, report in runs.items()}
    images = sorted(per_run["0.4.0"])
    hits = {name: np.array([run[image] for image in images]) for name, run in per_run.items()}
    print(f"## {fold}\n\n| run | outlined |\n|---|---|")
    for name, hit in hits.items():
        print(f"| {name} | {hit.mean():.1%} |")
    pairs = [(hits[a] | hits[b]).mean() for a, b in itertools.combinations(hits, 2)]
    every = np.array(list(hits.values()))
    print(
        f"\npairs, either outlines: {min(pairs):.1%}-{max(pairs):.1%}; any run: "
        f"{every.any(axis=0).mean():.1%}; a majority: {(every.mean(axis=0) > 0.5).mean():.1%}\n"
    )
