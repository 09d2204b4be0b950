"""How the lesion segmenter measures on images it was not trained on: Dice and IoU per class for
each prompt mode (the exact box, a box as drawn, one point on the lesion, no prompt), and, with
no prompt, how often the lesion is found (IoU ≥ 0.5, scored above the threshold) and how often
an image without a lesion is marked as having one. Beside them, the floor any box-prompted model
must clear: the ellipse inscribed in the drawn box, with no model at all (Dice 0.84-0.85 at each
site with boxes off by up to a tenth per edge)."""

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from branet_segmenter.branet_sam import BraNetSegmenter
from branet_shared.images import bounding_box, inscribed_ellipse
from branet_shared.schemas import BoundingBox, Point
from branet_training.segmenter.data import NORMAL, MaskedImage
from branet_training.segmenter.evaluate import jitter_box, overlap

FOUND_IOU = 0.5  # a lesion is found where the automatic mask overlaps it this much
EVALUATION_JITTER = 0.1  # the drawn box: each edge off by up to a tenth of the box's side


@dataclass(frozen=True)
class ImageScore:
    image: str
    kind: str  # benign, malignant, normal
    mode: str
    dice: float
    iou: float
    score: float  # the predicted IoU


def interior_point(mask: np.ndarray) -> Point:
    """The lesion's most interior pixel: where a person would click on it."""
    y, x = np.unravel_index(int(ndimage.distance_transform_edt(mask).argmax()), mask.shape)
    return Point(x=int(x), y=int(y), label=1)


def score_image(
    segmenter: BraNetSegmenter, image: MaskedImage, rng: np.random.Generator, prompted: bool
) -> list[ImageScore]:
    """The image without a prompt and, if `prompted` and it has a lesion, in every prompted
    mode too, beside the ellipse in the drawn box."""
    picture, truth = image.image_and_mask()
    prompts: dict[str, tuple[BoundingBox | None, list[Point]]] = {"none": (None, [])}
    scores = []
    if prompted and truth.any():
        box = bounding_box(truth)
        drawn = jitter_box(box, EVALUATION_JITTER, picture.width, picture.height, rng)
        prompts |= {
            "box": (box, []),
            "box_jittered": (drawn, []),
            "point": (None, [interior_point(truth)]),
        }
        ellipse = np.asarray(inscribed_ellipse(drawn, picture.size)) > 0  # no model at all
        dice, iou = overlap(ellipse, truth)
        scores.append(ImageScore(image.name, image.kind, "ellipse_in_box_jittered", dice, iou, 0))
    for mode, (box_prompt, points) in prompts.items():
        found = segmenter.predict(picture, image.name, box_prompt, points)
        dice, iou = overlap(found.mask, truth) if truth.any() else (0.0, 0.0)
        scores.append(ImageScore(image.name, image.kind, mode, dice, iou, found.score))
    return scores


def fitted_threshold(scores: Sequence[ImageScore]) -> float:
    """The predicted-IoU threshold that best separates automatic masks that found the lesion
    from those that did not (and from anything marked on an image without one): the best mean
    of the two shares kept right. Never fitted on a test site's scores."""
    automatic = [s for s in scores if s.mode == "none"]
    right = np.array([s.kind != NORMAL and s.iou >= FOUND_IOU for s in automatic])
    values = np.array([s.score for s in automatic])
    if right.all() or not right.any():
        return 0.5
    best, best_balance = 0.5, -1.0
    for candidate in np.unique(values):
        above = values >= candidate
        balance = (above[right].mean() + (~above[~right]).mean()) / 2
        if balance > best_balance:
            best, best_balance = float(candidate), float(balance)
    return best


def summary(scores: Sequence[ImageScore], threshold: float) -> dict[str, Any]:
    """Mean Dice and IoU per mode and class; found and false-alarm rates without a prompt."""
    by: dict[tuple[str, str], list[ImageScore]] = defaultdict(list)
    for score in scores:
        if score.kind != NORMAL:
            by[(score.mode, score.kind)].append(score)
            by[(score.mode, "all")].append(score)
    table: dict[str, Any] = {
        f"{mode}/{kind}": {
            "images": len(rows),
            "dice": statistics.fmean(r.dice for r in rows),
            "iou": statistics.fmean(r.iou for r in rows),
        }
        for (mode, kind), rows in sorted(by.items())
    }
    automatic = [s for s in scores if s.mode == "none"]
    lesions = [s for s in automatic if s.kind != NORMAL]
    normals = [s for s in automatic if s.kind == NORMAL]
    table["automatic"] = {
        "threshold": threshold,
        "lesion_found_rate": statistics.fmean(
            float(s.iou >= FOUND_IOU and s.score >= threshold) for s in lesions
        )
        if lesions
        else None,
        # The mask right whatever its score: what a better threshold could reach at most.
        "lesion_outlined_rate": statistics.fmean(float(s.iou >= FOUND_IOU) for s in lesions)
        if lesions
        else None,
        "normal_marked_rate": statistics.fmean(float(s.score >= threshold) for s in normals)
        if normals
        else None,
        "lesion_images": len(lesions),
        "normal_images": len(normals),
    }
    return table


def write_report(out: Path, sections: dict[str, Any], context: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({"context": context, **sections}, indent=2))
    lines = [f"# {context.get('title', 'Lesion segmenter')}", ""]
    for name, section in sections.items():
        lines += [f"## {name}", "", "| mode / class | images | Dice | IoU |", "|---|---|---|---|"]
        for key, row in section["summary"].items():
            if key != "automatic":
                lines.append(f"| {key} | {row['images']} | {row['dice']:.3f} | {row['iou']:.3f} |")
        auto = section["summary"]["automatic"]
        site = name.removeprefix("leave-out-")
        lines += [
            "",
            f"No prompt: {json.dumps(auto)}",
            "",
            f"Examples: [overlays-{site}.png](overlays-{site}.png) (written beside this"
            " report by the command; not committed, as they show the datasets' images)",
            "",
        ]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def scores_json(scores: Sequence[ImageScore]) -> list[dict[str, Any]]:
    return [asdict(score) for score in scores]


def write_overlays(
    path: Path, segmenter: BraNetSegmenter, images: Sequence[MaskedImage], seed: int, count: int = 8
) -> None:
    """A page of examples: each image with the expert's outline (green), the mask for a drawn
    box (yellow) and the mask with no prompt (red; dashed where under the threshold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    picked = rng.choice(len(images), size=min(count, len(images)), replace=False)
    chosen = [images[i] for i in sorted(picked)]
    columns = 4
    rows = -(-len(chosen) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image in zip(axes.flat, chosen, strict=False):
        picture, truth = image.image_and_mask()
        axis.imshow(np.asarray(picture.convert("L")), cmap="gray")
        title = f"{image.site} {image.kind}"
        if truth.any():
            axis.contour(truth, levels=[0.5], colors="lime", linewidths=1)
            drawn = jitter_box(
                bounding_box(truth), EVALUATION_JITTER, picture.width, picture.height, rng
            )
            boxed = segmenter.predict(picture, image.name, drawn, ())
            if boxed.mask.any():
                axis.contour(boxed.mask, levels=[0.5], colors="yellow", linewidths=1)
            title += f"\nbox Dice {overlap(boxed.mask, truth)[0]:.2f}"
        automatic = segmenter.predict(picture, image.name, None, ())
        found = automatic.score >= segmenter.card.lesion_threshold
        if automatic.mask.any():
            style = "solid" if found else "dashed"
            axis.contour(automatic.mask, levels=[0.5], colors="red", linestyles=style)
        title += f"  no prompt {'found' if found else 'none'} ({automatic.score:.2f})"
        axis.set_title(title, fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
