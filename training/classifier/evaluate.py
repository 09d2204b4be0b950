"""`branet-evaluate`: a saved model on any class-folder dataset, as one held-out set.

    branet-evaluate --model models/ultrasound.json --data ../shared/data/bus_uclm --out reports/x

The model runs as the classifier serves it (its card's preprocessing, calibration and, by
default, precision); the report is `report.py`'s, with the model's runtime recorded.
"""

import argparse
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import get_args

import numpy as np

from branet_classifier.classify import ResNet18Classifier
from branet_classifier.model import LesionCrop
from branet_runtime.precision import Precision
from branet_training.classifier.data import Sample, load_samples
from branet_training.classifier.engine import ImageCache, model_input
from branet_training.classifier.report import FoldResult, write_report


def _input_of(samples: Sequence[Sample], whole_image: bool, margin: float) -> str:
    boxless = sum(s.lesion is None for s in samples)
    if whole_image or boxless == len(samples):
        return "whole image"
    crops = f"lesion crop, margin {margin}"
    return f"{crops}; whole image for the {boxless} without a lesion box" if boxless else crops


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-evaluate",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help="the model card (.json)")
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--whole-image", action="store_true", help="ignore lesion boxes")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument(
        "--precision",
        choices=get_args(Precision),
        default="auto",
        help="auto (the default): as the classifier serves it, e.g. the card's int8 file",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    model = ResNet18Classifier.load(args.model, args.precision)
    samples, dedup = load_samples(args.data)
    images = ImageCache()
    margin = model.card.roi_margin
    truth, probability, uncalibrated, ids = [], [], [], []
    for sample in samples:
        image = images(sample.item.path)
        crop = LesionCrop(image) if args.whole_image else model_input(sample, image, margin)
        result = model.classify(crop.image, crop.lesion)
        truth.append(int(sample.label.value == "malignant"))
        probability.append(result.probabilities.malignant)
        uncalibrated.append(result.probabilities.malignant)
        ids.append(f"{sample.site}/{sample.item.name}")
    fold = FoldResult(
        "all",
        np.array(truth),
        np.array(probability),
        np.array(uncalibrated),
        model.card.temperature,
        ids,
        threshold=model.card.decision_threshold,
    )
    write_report(
        args.out,
        f"{model.card.name} {model.card.version} on {', '.join(d.name for d in args.data)}",
        {"all images": ([fold], {"input": _input_of(samples, args.whole_image, margin)})},
        {
            "model": model.card.name,
            "version": model.card.version,
            "sha256": model.card.weights_sha256,
            "runtime": model.runtime,
            "data": ", ".join(str(d) for d in args.data),
            "deduplication": asdict(dedup),
        },
        args.seed,
    )
    print((args.out / "report.md").read_text())
