"""Shipping a trained lesion segmenter: its weights, its card, and the card's human half."""

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from branet_runtime.files import sha256_of_file
from branet_segmenter.branet_sam import BraNetSegmenter
from branet_segmenter.model import SegmenterCard

# Box-prompted Dice published on BUSI, to read ours against (see card_markdown for how the
# settings differ): MedSAM with a box predicted from one click, arXiv:2606.04705 (2026).
PUBLISHED_BUSI_DICE = 0.89

# What automatic crops do for the classifier, leave-one-site-out (recorded on the card by hand
# from `branet-train --loso --segmenter-folds`'s report: another command's measurement).
CLASSIFIER_AUCS = (
    "loso_classifier_automatic_roi_auc",
    "loso_classifier_whole_image_auc",
    "loso_classifier_box_auc",
)


def encoder_start(training: dict[str, Any]) -> str:
    """Where the encoder's weights started, as the training config says."""
    return (
        "started from ImageNet"
        if training.get("config", {}).get("encoder_init")
        else "from scratch"
    )


def ship(
    segmenter: BraNetSegmenter,
    dest: Path,
    version: str,
    metrics: dict[str, float],
    training: dict[str, Any],
) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / "segmenter.safetensors"
    state = {k: v.detach().half().contiguous() for k, v in segmenter.sam.state_dict().items()}
    save_file(state, weights)
    card = segmenter.card.model_copy(
        update={
            "name": "branet-lesion-sam",
            "version": version,
            "weights_file": weights.name,
            "weights_sha256": sha256_of_file(weights),
            "metrics": metrics,
            "training": training,
            "description": "SAM's prompt encoder and mask decoder with a MobileNetV2 image"
            f" encoder ({encoder_start(training)}), trained"
            " on breast ultrasound lesion masks. Research use only; not a diagnosis.",
        }
    )
    return write_card(card, dest)


def write_card(card: SegmenterCard, dest: Path) -> Path:
    """The card beside its weights in `dest`: `segmenter.json` and its human half."""
    path = dest / "segmenter.json"
    path.write_text(card.model_dump_json(indent=2))
    path.with_suffix(".md").write_text(card_markdown(card))
    return path


def card_markdown(card: SegmenterCard) -> str:
    """What the segmenter is, how it measured, and what it is not for."""
    rows = "\n".join(f"| {name} | {value:.3f} |" for name, value in card.metrics.items())
    config = json.dumps(card.training.get("config", {}))
    automatic = (
        " (of three candidates, the one it scores highest)" if card.automatic_multimask else ""
    )
    score = "its predicted IoU"
    if card.automatic_detector:
        context = card.detector_context_layers
        across = f" after {context} transformer layer(s) across it" if context else ""
        automatic = f" inside the box that a detection head on the embedding{across} places"
        score = "its predicted IoU times the detector's confidence"
        if card.automatic_zoom:
            automatic += (
                f", outlined again in a window {card.automatic_zoom:g} times its size cropped"
                " around it (where that magnifies it), as prompted by its box"
            )
    detail = (
        ", its stride-4 features added to the decoder's mask features" if card.fine_detail else ""
    )
    return f"""# {card.name} {card.version}

{card.description}

**Intended use**: research and decision support in studies of breast ultrasound: marking a
lesion for the classifier. **Not** a diagnosis, not a medical device; a clinician decides.
Trained on breast ultrasound only: the segmenter refuses mammograms (automatic mode answers 503
with the reason; a drawn box is classified as drawn).

## Data and licences
{chr(10).join(f"- {text}" for text in card.training.get("licences", [])) or "- see training"}
- BUSI's normal images (resized to 256 × 256 by a third party), as images without a lesion.

## Input and modes
Grayscale, the longer side scaled to {card.input_size} px and padded (SAM's layout); SAM's
prompt encoder and mask decoder (depth {card.decoder_depth}) on a {card.embed_dim}-channel
embedding at 1/16 of the input from a MobileNetV2 trunk
({encoder_start(card.training)}){detail}. A box gives one mask; points the best of three; no prompt
the most lesion-like region{automatic}, a lesion where {score} reaches
{card.lesion_threshold:.3f} (fitted on the training images only).

## Measured (each site left out in turn; reports/segmenter/report.md)
| metric | value |
|---|---|
{rows}

Published box-prompted results on BUSI reach Dice about {PUBLISHED_BUSI_DICE} (MedSAM, a ViT-B
trained on over a million medical image-mask pairs, with a box predicted from one click,
arXiv:2606.04705), on random splits of BUSI itself: the same hospital in training and test.
These numbers are at a hospital the model has not seen, from a CPU-sized network trained here.

## Training
`{config}`

## Limits
- Trained on {card.training.get("images", "?")} images from three hospitals; a fourth
  hospital's scanners may differ. Never trained on a mammogram: it does not segment them.
{_measured_limits(card.metrics)}
- Weights: `{card.weights_file}`, SHA-256 `{card.weights_sha256}` (verified at load).
"""


def _measured_limits(metrics: dict[str, float]) -> str:
    """What the leave-one-site-out numbers say the model cannot yet do."""
    lines = []
    if {"loso_box_jittered_dice", "loso_ellipse_in_box_jittered_dice"} <= set(metrics):
        lines.append(
            f"- With a drawn box, Dice {metrics['loso_box_jittered_dice']:.3f} at a new hospital"
            f" against {metrics['loso_ellipse_in_box_jittered_dice']:.3f} for the ellipse"
            " inscribed in the same box, no model at all."
        )
    if "loso_lesion_found_rate" in metrics:
        lines.append(
            f"- With no prompt it finds the lesion (IoU >= 0.5) on"
            f" {metrics['loso_lesion_found_rate']:.0%} of lesion images at a new hospital; the"
            " others are classified whole."
        )
    if "loso_normal_marked_rate" in metrics:
        lines.append(
            f"- It marks a lesion on {metrics['loso_normal_marked_rate']:.0%} of images without"
            " one, at a hospital left out of training."
        )
    if all(name in metrics for name in CLASSIFIER_AUCS):
        automatic, whole, box = (metrics[name] for name in CLASSIFIER_AUCS)
        lines.append(
            f"- The classifier's ROC AUC at a new hospital on this model's automatic crops is"
            f" {automatic:.3f}, against {whole:.3f} on whole images and {box:.3f} on the true"
            " lesion boxes, by the same fold models (`branet-train --segmenter-folds`)."
        )
    if "loso_classifier_automatic_roi_mask_auc" in metrics:
        lines.append(
            "- Its mask as the classifier's lesion channel, in place of the ellipse inscribed in"
            f" its box, gives {metrics['loso_classifier_automatic_roi_mask_auc']:.3f}: the"
            " service keeps the ellipse."
        )
    return "\n".join(lines)
