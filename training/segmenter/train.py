"""`branet-train-segmenter`: train BraNet's lesion segmenter, measure it at hospitals it has not
seen, and ship it.

    branet-train-segmenter --data ../shared/data/{busi,breast_lesions_usg,bus_uclm} \\
        --normals ../shared/data/busi_normal_256 --loso --out reports/segmenter --ship models

1. Every masked image of the sites, deduplicated and grouped (`data.py`), and the normals.
2. With `--loso`: for each site, train on the others (their normals too) and score the site's
   images in every prompt mode (`report.py`); the automatic mode's threshold is fitted on the
   training images, never on the site scored.
3. With `--ship DIR`: train on everything, fit the threshold on it, and write `segmenter.json`
   (the card) and `segmenter.safetensors` to DIR, where the segmenter loads them by default.
"""

import argparse
import datetime as dt
import logging
import platform
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from branet_segmenter.branet_sam import BraNetSegmenter
from branet_segmenter.embeddings import EmbeddingCache
from branet_training.classifier.cards import LICENCES, git_commit
from branet_training.runs import pick_device
from branet_training.segmenter.cards import ship
from branet_training.segmenter.data import MaskedImage, load_masked_images
from branet_training.segmenter.engine import SegmenterTrainConfig, train_segmenter
from branet_training.segmenter.report import (
    ImageScore,
    fitted_threshold,
    score_image,
    scores_json,
    summary,
    write_overlays,
    write_report,
)

log = logging.getLogger(__name__)


def scored(
    segmenter: BraNetSegmenter, images: Sequence[MaskedImage], seed: int, prompted: bool = True
) -> list[ImageScore]:
    """Every image's scores; one embedding per image serves all its modes (cache of one)."""
    rng = np.random.default_rng(seed)
    return [s for image in images for s in score_image(segmenter, image, rng, prompted)]


def trained_segmenter(
    images: Sequence[MaskedImage], config: SegmenterTrainConfig, label: str
) -> tuple[BraNetSegmenter, list[dict[str, float]]]:
    """A model trained on `images`, its automatic threshold fitted on them, and its history."""
    trained = train_segmenter(images, config, label)
    segmenter = BraNetSegmenter(trained.card, trained.sam, EmbeddingCache(1))
    # The threshold is fitted on the no-prompt answers alone: the other modes are not scored.
    training_scores = scored(segmenter, images, config.seed, prompted=False)
    threshold = fitted_threshold(training_scores)
    segmenter.card = segmenter.card.model_copy(update={"lesion_threshold": threshold})
    return segmenter, trained.history


def leave_one_site_out(
    images: Sequence[MaskedImage],
    config: SegmenterTrainConfig,
    sites: Sequence[str] | None,
    out: Path,
    fold_models: Path | None = None,
) -> dict[str, Any]:
    """Each site scored by a model trained on the others; with `fold_models`, each such model
    is kept there (`leave-out-<site>/`), for measuring what its crops do to the classifier.
    A page of example overlays per site goes to `out`."""
    sections: dict[str, Any] = {}
    for site in sorted({image.site for image in images}):
        if sites and site not in sites:
            continue
        train = [image for image in images if image.site != site]
        test = [image for image in images if image.site == site]
        segmenter, history = trained_segmenter(train, config, f"loso-{site}")
        threshold = segmenter.card.lesion_threshold
        scores = scored(segmenter, test, config.seed)
        sections[f"leave-out-{site}"] = {
            "train": len(train),
            "test": len(test),
            "history": history,
            "summary": summary(scores, threshold),
            "scores": scores_json(scores),
        }
        log.info("left out %s: %s", site, sections[f"leave-out-{site}"]["summary"])
        write_overlays(out / f"overlays-{site}.png", segmenter, test, config.seed)
        if fold_models is not None:
            ship(segmenter, fold_models / f"leave-out-{site}", f"leave-out-{site}", {}, {})
    return sections


def headline(sections: dict[str, Any]) -> dict[str, float]:
    """Means over the sites left out: what the card carries."""
    keys = {
        "loso_box_jittered_dice": ("box_jittered/all", "dice"),
        "loso_box_dice": ("box/all", "dice"),
        "loso_point_dice": ("point/all", "dice"),
        "loso_automatic_dice": ("none/all", "dice"),
        "loso_ellipse_in_box_jittered_dice": ("ellipse_in_box_jittered/all", "dice"),
    }
    metrics: dict[str, float] = {}
    for name, (row, column) in keys.items():
        values = [s["summary"][row][column] for s in sections.values() if row in s["summary"]]
        if values:
            metrics[name] = round(float(np.mean(values)), 4)
    # No prompt: lesions found; lesions outlined whatever the score; images without one marked.
    for name in ("lesion_found_rate", "lesion_outlined_rate", "normal_marked_rate"):
        rates = [s["summary"]["automatic"][name] for s in sections.values()]
        if present := [rate for rate in rates if rate is not None]:
            metrics[f"loso_{name}"] = round(float(np.mean(present)), 4)
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-train-segmenter",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="masked sites")
    parser.add_argument("--normals", type=Path, nargs="*", default=[], help="lesion-free images")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--loso", action="store_true", help="leave each site out in turn")
    parser.add_argument("--sites", nargs="*", default=None, help="leave out only these sites")
    parser.add_argument("--ship", type=Path, default=None, help="write the final model here")
    parser.add_argument(
        "--fold-models", type=Path, default=None, help="keep each left-out site's model here"
    )
    parser.add_argument("--version", default=dt.date.today().isoformat())
    defaults = SegmenterTrainConfig()
    parser.add_argument("--size", type=int, default=defaults.input_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda")
    parser.add_argument(
        "--encoder-init", default=None, help="ImageNet MobileNetV2 .tflite to start from"
    )
    parser.add_argument("--encoder-lr-scale", type=float, default=defaults.encoder_lr_scale)
    parser.add_argument(
        "--encoder-frozen-blocks",
        type=int,
        default=defaults.encoder_frozen_blocks,
        help="with --encoder-init: keep MobileNetV2's first N blocks as ImageNet made them",
    )
    parser.add_argument(
        "--box-mask-prompt",
        action=argparse.BooleanOptionalAction,
        default=defaults.box_mask_prompt,
        help="give a box's inscribed ellipse as SAM's mask prompt",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    config = SegmenterTrainConfig(
        input_size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        device=args.device,
        encoder_init=args.encoder_init,
        encoder_lr_scale=args.encoder_lr_scale,
        encoder_frozen_blocks=args.encoder_frozen_blocks,
        box_mask_prompt=args.box_mask_prompt,
    )
    images = load_masked_images(args.data, args.normals)
    context = {
        "title": "BraNet lesion segmenter",
        "data": ", ".join(str(d) for d in [*args.data, *args.normals]),
        "licences": [text for key, text in LICENCES.items() if key in str(args.data)],
        "config": asdict(config),
        "code_commit": git_commit(),
        "torch": torch.__version__,
        "device": str(pick_device(config.device)),
        "machine": platform.processor() or platform.machine(),
    }
    sections = (
        leave_one_site_out(images, config, args.sites, args.out, args.fold_models)
        if args.loso
        else {}
    )
    write_report(args.out, sections, context)
    metrics = headline(sections)
    print(metrics)
    if args.ship is not None:
        segmenter, history = trained_segmenter(images, config, "final")
        training = {**context, "history": history, "images": len(images)}
        print(f"shipped {ship(segmenter, args.ship, args.version, metrics, training)}")
