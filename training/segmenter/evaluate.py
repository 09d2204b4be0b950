"""How well SAM outlines lesions: Dice and IoU against ground-truth masks, per class.

    branet-evaluate-sam --model-type vit_b --checkpoint sam_vit_b_01ec64.pth \\
        --data ../shared/data/busi [--limit 100] [--out sam-report.json]

Modes per image: the box itself taken as the mask (the reference SAM must beat); a box prompt
equal to the ground-truth mask's bounding box (what a user drawing a tight box gives); the same
box with each side moved by up to `--jitter` of the box's size (a hurried user); and automatic
mode (no prompt), on the uniform point grid (`automatic`) and on the cheaper lesion-focused
grid (`automatic-lesion`, `--lesion-points` prompts in the darkest cells). Automatic mode finding
nothing scores 0. Each mode's median seconds per image is reported beside its scores.
The embedding is computed once per image and shared by the prompts, as in the service.
"""

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from branet_runtime.allocator import keep_freed_memory
from branet_segmenter.responses import BoolMask, Segmentation
from branet_segmenter.segment import AutomaticSettings, LesionSegmenter
from branet_shared.images import bounding_box, validate_image
from branet_shared.schemas import BoundingBox, Label, Modality
from branet_training.datasets import LabelledImage, lesion_mask, list_class_folders


@dataclass(frozen=True)
class Score:
    image: str
    label: str
    mode: str
    dice: float
    iou: float
    seconds: float


def overlap(predicted: BoolMask | None, truth: BoolMask) -> tuple[float, float]:
    """(Dice, IoU); an empty prediction scores 0 against a non-empty truth."""
    if predicted is None:
        return 0.0, 0.0
    intersection = float(np.logical_and(predicted, truth).sum())
    union = float(np.logical_or(predicted, truth).sum())
    total = float(predicted.sum() + truth.sum())
    return (2 * intersection / total if total else 1.0), (intersection / union if union else 1.0)


def jitter_box(
    box: BoundingBox, amount: float, width: int, height: int, rng: np.random.Generator
) -> BoundingBox:
    w, h = box.x1 - box.x0, box.y1 - box.y0
    dx0, dx1 = (rng.uniform(-amount, amount, 2) * w).round().astype(int)
    dy0, dy1 = (rng.uniform(-amount, amount, 2) * h).round().astype(int)
    x0, x1 = max(0, box.x0 + dx0), min(width, box.x1 + dx1)
    y0, y1 = max(0, box.y0 + dy0), min(height, box.y1 + dy1)
    if x1 <= x0 or y1 <= y0:
        return box
    return BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1)


def evaluate_image(
    segmenter: LesionSegmenter,
    item: LabelledImage,
    jitter: float,
    automatic: Sequence[AutomaticSettings],
    rng: np.random.Generator,
) -> list[Score]:
    upload = validate_image(item.path.read_bytes())
    truth = lesion_mask(item, (upload.width, upload.height))
    if truth is None:
        return []
    rgb = np.asarray(upload.image.convert("RGB"))
    box = bounding_box(truth)
    box_fill = np.zeros_like(truth)
    box_fill[box.y0 : box.y1, box.x0 : box.x1] = True
    jittered = jitter_box(box, jitter, upload.width, upload.height, rng)
    runs: dict[str, Callable[[], Segmentation | None]] = {
        # Reference: the box itself as the mask; SAM should do better than this.
        "box-fill": lambda: Segmentation(mask=box_fill, score=1.0),
        "box": lambda: segmenter.prompted(rgb, upload.sha256, box),
        f"box±{jitter:.0%}": lambda: segmenter.prompted(rgb, upload.sha256, jittered),
    }
    for settings in automatic:
        runs[automatic_mode(settings)] = partial(
            segmenter.automatic, rgb, Modality.ULTRASOUND, settings
        )
    scores = []
    for mode, run in runs.items():
        started = time.perf_counter()
        found = run()
        seconds = time.perf_counter() - started
        dice, iou = overlap(found.mask if found else None, truth)
        scores.append(Score(item.name, item.label.value, mode, dice, iou, seconds))
    return scores


def automatic_mode(settings: AutomaticSettings) -> str:
    """`automatic` on the uniform grid (the default), `automatic-lesion` on the lesion grid."""
    return "automatic" if settings.grid == "uniform" else f"automatic-{settings.grid}"


def summarise(scores: list[Score]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for mode in dict.fromkeys(s.mode for s in scores):
        for label in ("benign", "malignant", "all"):
            chosen = [s for s in scores if s.mode == mode and label in ("all", s.label)]
            if not chosen:
                continue
            dice = [s.dice for s in chosen]
            iou = [s.iou for s in chosen]
            rows.append(
                {
                    "mode": mode,
                    "class": label,
                    "n": len(chosen),
                    "dice_mean": statistics.fmean(dice),
                    "dice_sd": statistics.pstdev(dice),
                    "dice_median": statistics.median(dice),
                    "iou_mean": statistics.fmean(iou),
                    "iou_sd": statistics.pstdev(iou),
                    "seconds_median": statistics.median(s.seconds for s in chosen),
                }
            )
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    header = ("mode", "class", "n", "Dice mean ± sd", "median", "IoU mean ± sd", "s/image")
    print("{:<16} {:<10} {:>4}  {:>15} {:>7}  {:>15} {:>8}".format(*header))
    for r in rows:
        print(
            f"{r['mode']!s:<16} {r['class']!s:<10} {r['n']:>4}  "
            f"{r['dice_mean']:>7.3f} ± {r['dice_sd']:.3f} {r['dice_median']:>7.3f}  "
            f"{r['iou_mean']:>7.3f} ± {r['iou_sd']:.3f} {r['seconds_median']:>8.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-evaluate-sam",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model-type", default="vit_b", choices=["vit_b", "vit_l", "vit_h", "toy"])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--checkpoint-sha256", default=None)
    parser.add_argument("--data", type=Path, required=True, help="class folders with _mask files")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N per class")
    parser.add_argument("--jitter", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points-per-side", type=int, default=16, help="the uniform grid's")
    parser.add_argument(
        "--grids",
        nargs="*",
        default=["uniform", "lesion"],
        choices=["uniform", "lesion"],
        help="automatic mode's point grids to compare (none: skip automatic mode)",
    )
    parser.add_argument("--lesion-points", type=int, default=24, help="the lesion grid's")
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "int8", "auto"],
        help="image encoder's",
    )
    parser.add_argument("--compile", action="store_true", help="compile the image encoder")
    parser.add_argument("--out", type=Path, default=None, help="write the scores as JSON")
    args = parser.parse_args(argv)

    keep_freed_memory()  # as the service runs, so that seconds per image are the service's
    segmenter = LesionSegmenter.load(
        args.model_type,
        args.checkpoint,
        args.checkpoint_sha256,
        precision=args.precision,
        compiled=args.compile,
    )
    items = [i for i in list_class_folders(args.data) if i.masks]
    if args.limit is not None:
        items = [i for label in Label for i in [x for x in items if x.label is label][: args.limit]]
    automatic = [
        AutomaticSettings(args.points_per_side, 0, args.max_side, grid, args.lesion_points)
        for grid in args.grids
    ]
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    scores: list[Score] = []
    for index, item in enumerate(items, 1):
        scores += evaluate_image(segmenter, item, args.jitter, automatic, rng)
        if index % 25 == 0 or index == len(items):
            print(
                f"  {index}/{len(items)} images, {time.perf_counter() - started:.0f} s", flush=True
            )
    rows = summarise(scores)
    sha = segmenter.checkpoint_sha256[:12]
    print(f"\nSAM {args.model_type} ({sha}) on {args.data}, seed {args.seed}")
    print_table(rows)
    if args.out is not None:
        report = {
            "model_type": args.model_type,
            "checkpoint_sha256": segmenter.checkpoint_sha256,
            "data": str(args.data),
            "seed": args.seed,
            "jitter": args.jitter,
            "automatic": [asdict(settings) for settings in automatic],
            "summary": rows,
            "scores": [asdict(s) for s in scores],
        }
        args.out.write_text(json.dumps(report, indent=2))
