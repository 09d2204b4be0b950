"""Shipping a trained classifier: its weights, its model card and the card's human half
(data and licences, preprocessing, metrics, limits)."""

import json
import logging
import subprocess
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from branet_classifier.model import ClassifierCard, Int8Card, card_caveats
from branet_runtime.files import sha256_of_file
from branet_shared.schemas import Modality
from branet_training.classifier.data import Sample
from branet_training.classifier.engine import TrainConfig, TrainedModel
from branet_training.classifier.folds import half_state

log = logging.getLogger(__name__)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ship(
    modality: Modality,
    samples: Sequence[Sample],
    config: TrainConfig,
    trained: Callable[[], TrainedModel],
    dest: Path,
    metrics: dict[str, float],
    context: dict[str, Any],
    version: str,
    force: bool,
) -> Path | None:
    """Train on everything and write `<modality>.safetensors` + card, if it beats the old one."""
    card_path = dest / f"{modality.value}.json"
    key = "cv_roc_auc_mean"
    if card_path.exists() and not force:
        old = ClassifierCard.model_validate_json(card_path.read_text())
        if old.metrics.get(key, 0.0) >= metrics.get(key, 0.0):
            log.info(
                "not shipping: %s %.3f does not beat %.3f",
                key,
                metrics.get(key, 0.0),
                old.metrics[key],
            )
            return None
    model = trained()
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / f"{modality.value}.safetensors"
    save_file(half_state(model.network), weights)
    card = ClassifierCard(
        name=f"branet-resnet18-{modality.value}",
        version=version,
        modality=modality,
        weights_file=weights.name,
        weights_sha256=sha256_of_file(weights),
        input_size=config.input_size,
        temperature=model.temperature,
        malignant_prevalence=model.malignant_prevalence,
        roi_margin=config.roi_margin,
        keep_aspect=config.keep_aspect,
        lesion_channel=config.lesion_channel,
        metrics=metrics,
        description=model_description(config, samples),
        training={**asdict(config), **context},
    )
    card_path.write_text(card.model_dump_json(indent=2))
    card_path.with_suffix(".md").write_text(card_markdown(card))
    # The old weights' int8 file no longer matches; branet-quantize makes the new one.
    (dest / f"{modality.value}.int8.onnx").unlink(missing_ok=True)
    return card_path


# What the original BraNet reported on its validation sets: our floor.
ORIGINAL_SYSTEM = {
    Modality.ULTRASOUND: {"benign_accuracy": 0.931, "malignant_accuracy": 0.949},
    Modality.MAMMOGRAPHY: {"benign_accuracy": 0.809, "malignant_accuracy": 0.769},
}
LICENCES = {
    "busi": "BUSI (Al-Dhabyani et al., Data in Brief 2020), CC0 1.0",
    "breast_lesions_usg": "BrEaST-Lesions_USG (Pawłowska et al., Sci Data 2024), CC BY 4.0",
    "bus_uclm": "BUS-UCLM (Vallez et al., Sci Data 2025), CC BY 4.0",
    "mini_mias": "mini-MIAS (Suckling et al., 1994), research use only, cite, not for sale",
}


def _fitting(card: ClassifierCard) -> str:
    if card.keep_aspect:
        return "its longer side scaled and the rest padded black (the shape kept) to"
    return "squashed to"


def card_markdown(card: ClassifierCard) -> str:
    """The human half of the model card: what it is, how it measured, what it is not for."""
    data = str(card.training.get("data", ""))
    sources = [text for key, text in LICENCES.items() if key in data]
    original = ORIGINAL_SYSTEM[card.modality]
    metric_rows = "\n".join(f"| {name} | {value:.3f} |" for name, value in card.metrics.items())
    return f"""# {card.name} {card.version}

{card.description}

**Intended use**: research and decision support in studies of breast {card.modality.value}
images. **Not** a diagnosis, not a medical device, not validated on any population or scanner
beyond the data below; a clinician decides.

## Data and licences
{chr(10).join(f"- {source}" for source in sources) or "- " + data}

Deduplicated by perceptual hash (copies dropped, near-duplicates and a patient's images kept
in one fold; images filed under both classes dropped).

## Input and preprocessing
The lesion's region of interest (its box plus {card.roi_margin:.0%} context per side, from the
segmenter or the user's box), or the whole image: grayscale, {_fitting(card)} {card.input_size}×
{card.input_size}, ImageNet normalisation (`image_to_tensor` + `model_tensor` in
`services/classifier/model.py`, shared by training and serving).{_lesion_channel(card)}
Softmax temperature {card.temperature:.3f}: 1 unless a held-back part of the training data shows
another fits significantly better (likelihood-ratio test, 5 %).
{_prevalence(card)}

## Training
`{json.dumps({k: v for k, v in card.training.items() if k != "data"}, default=str)}`

## Measured (cross-validation, see reports/{card.modality.value}/report.md)
| metric | value |
|---|---|
{metric_rows}

The original BraNet reported {original["benign_accuracy"]:.1%} benign and
{original["malignant_accuracy"]:.1%} malignant accuracy on its own validation split (no
deduplication or site separation described); those are the numbers to beat.
{int8_markdown(card.int8) if card.int8 else ""}
## Limits
{_limits(card)}- Site marks (calipers, text, body-marker icons) are blotted in training, not
  removed; a model may still read them.
- Weights: `{card.weights_file}`, SHA-256 `{card.weights_sha256}` (verified at load).
"""


def _prevalence(card: ClassifierCard) -> str:
    if card.malignant_prevalence is None:
        return "Probabilities are at even odds (classes weighted equally); the label at 0.5."
    share = card.malignant_prevalence
    return f"""Trained with the classes weighted equally, its odds are moved to the training data's
{100 * share:.1f} % malignant, so that probabilities read at that prevalence; the label is
malignant from P(malignant) = {share:.3f}, which weighs both classes equally (the operating
point of the per-class accuracies below)."""


def _lesion_channel(card: ClassifierCard) -> str:
    if not card.lesion_channel:
        return ""
    return """ The third channel marks the
lesion instead: +1 inside the ellipse inscribed in its box, -1 outside, 0 when no box is
known (a whole image, or a crop uploaded without one)."""


def _limits(card: ClassifierCard) -> str:
    """The limits that depend on the card: where training started, and whether the model is
    better than chance at all."""
    lines = [f"- Trained {training_start(card.training)},\n  on the few images counted above."]
    lines += [
        textwrap.fill(
            f"- **Every answer carries the caveat `{caveat.code}`**: {caveat.detail} Do not"
            " read anything into its label.",
            width=95,
            subsequent_indent="  ",
        )
        for caveat in card_caveats(card)
    ]
    return "".join(f"{line}\n" for line in lines)


def int8_markdown(int8: Int8Card) -> str:
    agreement, calibration = int8.agreement, int8.calibration
    return f"""
## Served in int8
`{int8.file}` (SHA-256 `{int8.sha256}`, verified at load) is these weights with every
convolution quantised to int8 (static; weights per channel, activations per tensor; the
two-class head stays fp32), made by `branet-quantize`, its activation ranges calibrated on
{calibration.images} training images of {", ".join(calibration.datasets)}
(seed {calibration.seed}). On the {agreement["images"]:.0f} images not used to calibrate,
it gives the fp32 label for {agreement["label_agreement"]:.2%} of them; max |ΔP(malignant)|
{agreement["max_abs_dp_malignant"]:.4f}, mean {agreement["mean_abs_dp_malignant"]:.4f}. The
classifier serves it by default (`CLASSIFIER_PRECISION=auto`, with ONNX Runtime installed).
"""


def training_start(training: Mapping[str, Any]) -> str:
    """Where the weights started: what a card owes its prior's source and licence."""
    if teacher := training.get("distil_from"):
        return (
            f"from scratch, its trunk first taught ImageNet's features by the MobileNetV2 in"
            f" `{Path(str(teacher)).name}` ({training.get('distil_epochs')} epochs of feature"
            " distillation; Google's, Apache-2.0, ../shared/data/pretrained)"
        )
    if pretrained := training.get("pretrained"):
        return f"from `{pretrained}`"
    return "from scratch (no ImageNet weights could be downloaded)"


def model_description(config: TrainConfig, samples: Sequence[Sample]) -> str:
    sites = ", ".join(sorted({s.site for s in samples}))
    return (
        f"ResNet18 trained {training_start(asdict(config))} on {len(samples)} deduplicated"
        f" images of {sites}. "
        "Research use only; not a diagnosis."
    )
