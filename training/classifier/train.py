"""`branet-train`: cross-validate, train and ship a modality's classifier, with its report.

    branet-train --modality ultrasound --data ../shared/data/busi --out reports/ultrasound
    branet-train --modality ultrasound --data ../shared/data/{busi,breast_lesions_usg,bus_uclm} \\
        --loso --ship models --out reports/ultrasound

1. Deduplicate and group the images (`data.py`).
2. Per site, stratified 5-fold cross-validation over the groups, with a recorded seed. Inside
   each training split a stratified ~15 % is held back to fit the softmax temperature (kept only
   where it fits significantly better than 1); the test fold is only ever predicted, never used
   to choose anything.
3. With `--loso` and several sites: train on all sites but one, test on that one, for each.
   In 2 and 3 every test image with a lesion box is predicted twice: as its lesion crop, and
   whole (no box), each in its own report section.
4. With `--ship DIR`: train on every image of every site and write the weights (fp16
   safetensors) and model card to DIR — only when the cross-validated ROC AUC beats the card
   already there (or `--force`).

Every fold's result and weights are saved under `--work-dir`, and every epoch's checkpoint: an
interrupted run started again with the same arguments picks up where it stopped. With
`--jobs N`, N folds (and the final model) train at once in worker processes: on a GPU the folds
are too small to fill it, and the CPU-side augmentation of one process cannot keep it busy.
"""

import argparse
import datetime as dt
import hashlib
import json
import logging
import platform
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from branet_shared.schemas import Modality
from branet_training.classifier.cards import git_commit, ship
from branet_training.classifier.data import Sample, load_samples
from branet_training.classifier.distil import site_folder
from branet_training.classifier.engine import TrainConfig
from branet_training.classifier.folds import (
    AUTOMATIC_ROI,
    AUTOMATIC_ROI_MASK,
    WHOLE_IMAGE,
    FoldRunner,
    plan_sections,
    splits_seed,
    variant_sections,
)
from branet_training.classifier.report import write_report
from branet_training.pretrained import checked_conversion
from branet_training.runs import pick_device

log = logging.getLogger(__name__)


def share(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def margin(text: str) -> float:
    """An argparse type: a share of the box's side, 0 or more."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-train",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--modality", required=True, choices=[m.value for m in Modality])
    parser.add_argument(
        "--data", type=Path, nargs="+", required=True, help="class folders, one per site"
    )
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--work-dir", type=Path, default=Path(".branet/train"))
    parser.add_argument("--cv", type=int, default=5, help="folds per site (0: skip)")
    parser.add_argument(
        "--cv-sites", nargs="*", default=None, help="cross-validate only these sites (folder names)"
    )
    parser.add_argument(
        "--cv-with-other-sites",
        action="store_true",
        help="add the other sites' images to every CV training split (the shipped model has them)",
    )
    parser.add_argument("--loso", action="store_true", help="also leave one site out")
    parser.add_argument("--ship", type=Path, default=None, help="write the final model here")
    parser.add_argument("--force", action="store_true", help="ship even without improvement")
    parser.add_argument("--version", default=dt.date.today().isoformat())
    defaults = TrainConfig()
    parser.add_argument("--size", type=int, default=defaults.input_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument(
        "--whole-image-rate",
        type=share,
        default=defaults.whole_image_rate,
        help="share of training draws that show the whole image instead of the lesion crop",
    )
    parser.add_argument(
        "--keep-aspect",
        action="store_true",
        help="pad the input to a square instead of squashing it, keeping the lesion's shape",
    )
    parser.add_argument(
        "--roi-margin",
        type=margin,
        default=defaults.roi_margin,
        help="context around the lesion's box per side, a share of its width and height",
    )
    parser.add_argument(
        "--lesion-channel",
        action="store_true",
        help="mark the lesion's box (an ellipse in it) in the input's third channel",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="the folds' and the temperature split's seed (default: --seed); fixed while"
        " --seed varies, runs share their folds",
    )
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda")
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument(
        "--pretrained", default=None, help="ResNet18 state dict: ImageNet, or branet-pretrain's"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="folds trained at once, in worker processes"
    )
    parser.add_argument(
        "--segmenter-folds",
        type=Path,
        default=None,
        help="branet-train-segmenter --fold-models folder: also classify each left-out site"
        " around what the segmenter trained without it finds with no prompt",
    )
    parser.add_argument(
        "--imagenet-teacher",
        type=Path,
        default=None,
        help="fine-tune ImageNet's MobileNetV2 (its TFLite file, ../shared/data/pretrained/) in"
        " the ResNet18's place, on the same folds: a reference, never shipped",
    )
    parser.add_argument(
        "--distil-from",
        type=Path,
        default=None,
        help="ImageNet's MobileNetV2 (its TFLite file): the ResNet18 first learns its features on"
        " each fold's training images, then trains as usual",
    )
    parser.add_argument("--distil-epochs", type=int, default=defaults.distil_epochs)
    parser.add_argument(
        "--distil-unlabelled",
        type=site_folder,
        nargs="*",
        default=[],
        metavar="SITE=DIR",
        help="unlabelled images of a site (e.g. busi=../shared/data/busi_normal_256), distilled"
        " on in every fold that trains on that site",
    )
    args = parser.parse_args(argv)
    if args.distil_from and (args.imagenet_teacher or args.pretrained):
        parser.error("--distil-from teaches a ResNet18 from scratch, not other weights")
    if args.imagenet_teacher and args.ship:
        parser.error("--imagenet-teacher measures a reference; the served model is a ResNet18")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    modality = Modality(args.modality)
    config = TrainConfig(
        input_size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        augment=not args.no_augment,
        whole_image_rate=args.whole_image_rate,
        roi_margin=args.roi_margin,
        keep_aspect=args.keep_aspect,
        lesion_channel=args.lesion_channel,
        seed=args.seed,
        split_seed=args.split_seed,
        device=args.device,
        bf16=not args.no_bf16,
        pretrained=args.pretrained,
        imagenet_teacher=str(args.imagenet_teacher) if args.imagenet_teacher else None,
        distil_from=str(args.distil_from) if args.distil_from else None,
        distil_epochs=args.distil_epochs,
        distil_unlabelled=tuple(args.distil_unlabelled),
    )
    fingerprint = hashlib.sha256(
        json.dumps(
            [asdict(config), sorted(str(d) for d in args.data), args.cv_with_other_sites]
        ).encode()
    ).hexdigest()[:10]
    work_dir = args.work_dir / f"{modality.value}-{fingerprint}"
    samples, dedup = load_samples(args.data)
    context = {
        "modality": modality.value,
        "seed": config.seed,
        "data": ", ".join(str(d) for d in args.data),
        "code_commit": git_commit(),
        "torch": torch.__version__,
        "device": str(pick_device(config.device)),
        "machine": platform.processor() or platform.machine(),
        "config": asdict(config),
        "deduplication": asdict(dedup),
    }
    if teacher := args.distil_from or args.imagenet_teacher:
        conversion = teacher_conversion(teacher, samples)
        context["teacher_conversion"] = conversion
        cosine = conversion["tensorflow_padding"]["mean_cosine"]
        context["teacher_mean_cosine_with_litert"] = cosine
    plans = plan_sections(
        samples, args.cv, args.cv_sites, args.loso, splits_seed(config), args.cv_with_other_sites
    )
    with FoldRunner(config, work_dir, args.jobs, args.segmenter_folds) as runner:
        pending = {name: (runner.folds(folds), notes) for name, (folds, notes) in plans.items()}
        final = runner.final(samples) if args.ship is not None else None
        sections = {name: (results(), notes) for name, (results, notes) in pending.items()}
        sections |= variant_sections(sections)
        report = write_report(
            args.out, f"{network_name(config)}, {modality.value}", sections, context, config.seed
        )
        metrics = headline_metrics(report)
        print(json.dumps(metrics, indent=2))
        if final is not None:
            shipped = ship(
                modality,
                samples,
                replace(config),
                final,
                args.ship,
                metrics,
                {k: context[k] for k in ("data", "code_commit", "torch", "device", "seed")},
                args.version,
                args.force,
            )
            if shipped is not None:
                print(f"shipped {shipped}")


def teacher_conversion(path: Path, samples: list[Sample]) -> dict[str, Any]:
    """The converted teacher checked against LiteRT on 32 of the run's images, spread over its
    sites, before anything is trained from it (`checked_conversion`)."""
    step = max(1, len(samples) // 32)
    results = checked_conversion(path, [s.item.path for s in samples[::step][:32]])
    log.info("teacher conversion: %s", json.dumps(results))
    return results


def network_name(config: TrainConfig) -> str:
    if config.imagenet_teacher:
        return "ImageNet MobileNetV2 (teacher), fine-tuned"
    if config.distil_from:
        return "BraNet ResNet18, distilled from ImageNet's MobileNetV2"
    return "BraNet ResNet18"


def headline_metrics(report: dict[str, Any]) -> dict[str, float]:
    """What the card carries: the first site's CV means, and the leave-one-site-out mean AUC,
    on lesion crops; and both AUCs on whole images where the report has them."""
    metrics: dict[str, float] = {}
    cv = [
        name
        for name in report["sections"]
        if name.startswith("cv-") and not name.endswith(WHOLE_IMAGE)
    ]
    if cv:
        crops = report["sections"][cv[0]]
        means = crops["mean_sd"]
        for name in (
            "benign_accuracy",
            "malignant_accuracy",
            "roc_auc",
            "sensitivity",
            "specificity",
            "f1",
            "ece",
            "ece_if_calibrated",
        ):
            if name in means:
                metrics[f"cv_{name}_mean"] = round(means[name]["mean"], 4)
        low, high = crops["pooled_ci95"]["roc_auc"]
        metrics |= {"cv_roc_auc_ci95_low": round(low, 4), "cv_roc_auc_ci95_high": round(high, 4)}
    auc_sections = {"loso": "leave-one-site-out"}
    if cv:
        auc_sections["cv_whole_image"] = cv[0] + WHOLE_IMAGE
    auc_sections["loso_whole_image"] = "leave-one-site-out" + WHOLE_IMAGE
    auc_sections["loso_automatic_roi"] = "leave-one-site-out" + AUTOMATIC_ROI
    auc_sections["loso_automatic_roi_mask"] = "leave-one-site-out" + AUTOMATIC_ROI_MASK
    for prefix, name in auc_sections.items():
        if section := report["sections"].get(name):
            metrics[f"{prefix}_roc_auc_mean"] = round(section["mean_sd"]["roc_auc"]["mean"], 4)
    return metrics
