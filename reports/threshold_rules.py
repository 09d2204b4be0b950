"""How automatic mode's threshold rule moves lesions found, on kept leave-one-site-out fold
models: each fold model scores its training images and its left-out site without a prompt, and
each rule fits its threshold on the training images' scores alone. Beside lesions found, the
share of lesion images shown a wrong mask (scored at or above the threshold, IoU under 0.5).
The shipped rule is `report.fitted_threshold` (the best balance); the others choose among
thresholds whose balance is within a margin of the best, or the median over bootstrap
resamples.

    .venv/bin/python reports/threshold_rules.py .branet/folds-cp .branet/folds-swa \\
        .branet/folds-rf --data ../shared/data --scores .branet/thr

Each folder holds `leave-out-<site>/segmenter.json` (`branet-train-segmenter --fold-models`).
Scores are cached in `--scores` as JSON, one file per fold model. Run from the repository root.
"""

import argparse
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from branet_segmenter.branet_sam import BraNetSegmenter
from branet_segmenter.embeddings import EmbeddingCache
from branet_training.segmenter.data import NORMAL, load_masked_images
from branet_training.segmenter.report import (
    FOUND_IOU,
    ImageScore,
    fitted_threshold,
    score_image,
    summary,
)

SITES = ("breast_lesions_usg", "bus_uclm", "busi")
Rule = Callable[[Sequence[ImageScore]], float]


def fold_scores(models: Path, site: str, data: Path, cache: Path) -> dict[str, list[ImageScore]]:
    """The fold model's no-prompt scores on its training images and on the site left out."""
    out = cache / f"{models.name}-{site}.json"
    if not out.exists():
        images = load_masked_images([data / s for s in SITES], [data / "busi_normal_256"])
        card = models / f"leave-out-{site}" / "segmenter.json"
        segmenter = BraNetSegmenter.load(card, EmbeddingCache(4))
        rng = np.random.default_rng(0)
        rows: dict[str, list[dict[str, object]]] = {"train": [], "test": []}
        for image in images:
            part = "test" if image.site == site else "train"
            rows[part] += [asdict(s) for s in score_image(segmenter, image, rng, prompted=False)]
        out.write_text(json.dumps(rows))
    kept: dict[str, list[dict[str, Any]]] = json.loads(out.read_text())
    return {part: [ImageScore(**r) for r in kept[part] if r["mode"] == "none"] for part in kept}


def wrong_shown(scores: Sequence[ImageScore], threshold: float) -> float:
    lesions = [s for s in scores if s.kind != NORMAL]
    return statistics.fmean(float(s.score >= threshold and s.iou < FOUND_IOU) for s in lesions)


def balance_curve(scores: Sequence[ImageScore]) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate threshold and its balance, as `fitted_threshold` computes it."""
    right = np.array([s.kind != NORMAL and s.iou >= FOUND_IOU for s in scores])
    values = np.array([s.score for s in scores])
    candidates = np.unique(values)
    balance = np.array(
        [((values >= c)[right].mean() + (values < c)[~right].mean()) / 2 for c in candidates]
    )
    return candidates, balance


def lowest_within(margin: float) -> Rule:
    def rule(scores: Sequence[ImageScore]) -> float:
        candidates, balance = balance_curve(scores)
        return float(candidates[balance >= balance.max() - margin].min())

    return rule


def median_within(margin: float) -> Rule:
    def rule(scores: Sequence[ImageScore]) -> float:
        candidates, balance = balance_curve(scores)
        return float(np.median(candidates[balance >= balance.max() - margin]))

    return rule


def bootstrap_median(scores: Sequence[ImageScore], resamples: int = 100) -> float:
    rng = np.random.default_rng(0)
    picks = (rng.integers(0, len(scores), len(scores)) for _ in range(resamples))
    return float(np.median([fitted_threshold([scores[i] for i in pick]) for pick in picks]))


RULES: dict[str, Rule] = {
    "best balance (shipped)": fitted_threshold,
    "lowest within 1 point": lowest_within(0.01),
    "lowest within 2 points": lowest_within(0.02),
    "median within 2 points": median_within(0.02),
    "bootstrap median": bootstrap_median,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="--fold-models folders")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--scores", type=Path, required=True, help="cache of the scores")
    args = parser.parse_args()
    args.scores.mkdir(parents=True, exist_ok=True)
    folds = {
        (models.name, site): fold_scores(models, site, args.data, args.scores)
        for models in args.models
        for site in SITES
    }
    print(
        "| rule | mean found | mean wrong shown | "
        + " | ".join(f"{m} {s}" for m, s in folds)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(folds))
    for name, rule in RULES.items():
        cells, found, wrong = [], [], []
        for scores in folds.values():
            threshold = rule(scores["train"])
            rates = summary(scores["test"], threshold)["automatic"]
            found.append(rates["lesion_found_rate"])
            wrong.append(wrong_shown(scores["test"], threshold))
            marked = rates["normal_marked_rate"]
            normals = "" if marked is None else f", normals {marked:.1%}"
            cells.append(f"{threshold:.3f}: {found[-1]:.1%}{normals}")
        means = f"{statistics.fmean(found):.1%} | {statistics.fmean(wrong):.1%}"
        print(f"| {name} | {means} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
