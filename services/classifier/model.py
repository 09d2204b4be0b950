"""What training and serving must agree on for a ResNet18 classifier: the model card, the
network's construction, the preprocessing, and the calibration of its outputs.

A model on disk is two files in the model folder: `<modality>.json` (a `ClassifierCard`) and
the safetensors weights it names, whose SHA-256 the card pins. The training workbench writes
them with these definitions and the classifier service reads them with the same ones; the
parity test (tests/unit/training/test_classifier_training.py) holds the two to one preprocessing.
"""

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torchvision
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from torchvision.transforms.v2 import functional as tvf

from branet_shared.images import fitted_size, inscribed_ellipse, roi_rect
from branet_shared.schemas import BoundingBox, Caveat, Label, Modality

CLASSES: tuple[Label, Label] = (Label.BENIGN, Label.MALIGNANT)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Calibration(BaseModel):
    """What an int8 artefact's activation ranges were fitted on."""

    images: int
    seed: int
    datasets: list[str]


class Int8Card(BaseModel):
    """The int8 artefact of a model card: where it is and how faithful it is to fp32."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    calibration: Calibration
    agreement: dict[str, float] = Field(
        default_factory=dict, description="label agreement and |ΔP(malignant)| against fp32"
    )


class ClassifierCard(BaseModel):
    """What a shipped classifier is, how to feed it, and how well it measured."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    version: str
    modality: Modality
    architecture: Literal["resnet18"] = "resnet18"
    weights_file: str
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    input_size: int = Field(224, ge=32, le=1024)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    temperature: float = Field(1.0, gt=0, description="softmax temperature from calibration")
    malignant_prevalence: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="share of malignant images in the training data. Trained with class"
        " weights, the network answers as if both classes were equally common; its odds are"
        " moved to this share, so probabilities read at the training sites' prevalence, and"
        " the label stays the class-weighted decision: malignant from P(malignant) = this"
        " share. None: probabilities at equal odds, the label at 0.5",
    )
    roi_margin: float = Field(0.25, ge=0, description="context around the lesion in training")
    keep_aspect: bool = Field(False, description="padded to a square, not squashed, to resize")
    lesion_channel: bool = Field(
        False, description="the third input channel marks the lesion's box (lesion_marker)"
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    description: str = ""
    training: dict[str, Any] = Field(default_factory=dict, description="config, data, commit")
    int8: Int8Card | None = Field(None, description="the weights quantised (branet-quantize)")

    @property
    def decision_threshold(self) -> float:
        """The prevalence the odds are moved to and the label drawn at; 0.5 without one."""
        return self.malignant_prevalence or 0.5

    @property
    def roc_auc_ci95(self) -> tuple[float, float] | None:
        """The 95 % CI of the pooled cross-validated ROC AUC, where the card has it."""
        low, high = (
            self.metrics.get("cv_roc_auc_ci95_low"),
            self.metrics.get("cv_roc_auc_ci95_high"),
        )
        return None if low is None or high is None else (low, high)


def card_caveats(card: ClassifierCard) -> list[Caveat]:
    """What every answer of this model should carry: whether it measured no better than
    chance (its cross-validated AUC's 95 % CI includes 0.5)."""
    ci = card.roc_auc_ci95
    if ci is None or ci[0] > 0.5:
        return []
    low, high = ci
    return [
        Caveat(
            code="model_at_chance",
            detail=f"{card.name} {card.version} measured no better than chance: the 95 % CI of"
            f" its cross-validated ROC AUC, [{low:.2f}, {high:.2f}], includes 0.5.",
        )
    ]


def calibrated_logits(
    logits: torch.Tensor, temperature: float | torch.Tensor, prevalence: float
) -> torch.Tensor:
    """N×2 logits scaled by the temperature, the malignant odds then moved from even to the
    `prevalence` the network was trained at (see `ClassifierCard`; 0.5 leaves them even)."""
    shift = torch.tensor([0.0, math.log(prevalence / (1 - prevalence))], dtype=logits.dtype)
    return logits / temperature + shift.to(logits.device)


def calibrated_probabilities(
    logits: torch.Tensor, temperature: float, prevalence: float
) -> torch.Tensor:
    return torch.softmax(calibrated_logits(logits, temperature, prevalence), dim=1)


def fitted_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """Where an image lands in the S×S input when its aspect is kept: left, top, width, height."""
    fitted_w, fitted_h = fitted_size(width, height, size)
    return (size - fitted_w) // 2, (size - fitted_h) // 2, fitted_w, fitted_h


def image_to_tensor(image: Image.Image, size: int, keep_aspect: bool = False) -> torch.Tensor:
    """Grayscale, resized to size×size, as 1×S×S floats in [0, 1].

    Colour is dropped on purpose: in these images it is annotation (markers, Doppler), which
    tells a model about the site, not the lesion. Training and serving both start here.
    With `keep_aspect` the longer side is scaled to S and the rest padded black, so a lesion's
    shape and orientation (taller than wide or not) survive; else the image is squashed.
    """
    gray = image if image.mode == "L" else image.convert("L")
    tensor: torch.Tensor = tvf.pil_to_tensor(gray)
    if keep_aspect:
        left, top, width, height = fitted_box(gray.width, gray.height, size)
        tensor = tvf.resize(tensor, [height, width], antialias=True)
        tensor = tvf.pad(tensor, [left, top, size - width - left, size - height - top], fill=0)
    else:
        tensor = tvf.resize(tensor, [size, size], antialias=True)
    scaled: torch.Tensor = tvf.to_dtype(tensor, torch.float32, scale=True)
    return scaled


def standardise(
    pixels: torch.Tensor, mean: tuple[float, float, float], std: tuple[float, float, float]
) -> torch.Tensor:
    """1×S×S in [0, 1] to the 3×S×S input ResNet18 expects: each channel less `mean`, over `std`."""
    standardised: torch.Tensor = tvf.normalize(pixels.expand(3, -1, -1), list(mean), list(std))
    return standardised


@dataclass(frozen=True)
class LesionCrop:
    """What the classifier is shown: an image and, where known, the lesion's box within it and
    the segmenter's mask of it (an `L` image of the same size, 255 on the lesion)."""

    image: Image.Image
    lesion: BoundingBox | None = None
    outline: Image.Image | None = None


def crop_around(
    image: Image.Image,
    box: BoundingBox,
    rect: tuple[int, int, int, int],
    outline: Image.Image | None = None,
) -> LesionCrop:
    """`image` (and `outline`) cut to `rect` (left, top, right, bottom), with the lesion's box
    moved into it."""
    left, top = rect[0], rect[1]
    inside = BoundingBox(x0=box.x0 - left, y0=box.y0 - top, x1=box.x1 - left, y1=box.y1 - top)
    return LesionCrop(image.crop(rect), inside, None if outline is None else outline.crop(rect))


def crop_to_lesion(
    image: Image.Image,
    box: BoundingBox | None,
    margin: float,
    outline: Image.Image | None = None,
) -> LesionCrop:
    """The box with `margin` of context (`roi_rect`), and the box (and `outline`) within that
    crop; without a box, the image as it is."""
    if box is None:
        return LesionCrop(image)
    return crop_around(image, box, roi_rect(image, box, margin), outline)


def lesion_marker(crop: LesionCrop, size: int, keep_aspect: bool) -> torch.Tensor | None:
    """The lesion marker, 1×S×S in {0, 1}, resized as the image is: the ellipse inscribed in the
    lesion's box, or the crop's `outline` where it has one.

    It tells the model which part of the crop is the lesion and which is context. The
    ellipse by default: a model trained on the annotators' outlines did no better with
    them than with this ellipse, and worse with outlines a tenth off (models/README.md).
    """
    if crop.lesion is None:
        return None
    shape = (
        crop.outline
        if crop.outline is not None
        else inscribed_ellipse(crop.lesion, crop.image.size)
    )
    return (image_to_tensor(shape, size, keep_aspect) > 0.5).float()


def model_tensor(
    pixels: torch.Tensor,
    marker: torch.Tensor | None,
    lesion_channel: bool,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> torch.Tensor:
    """The 3×S×S network input: the image normalised in every channel, or, with
    `lesion_channel`, in the first two and the lesion marker in the third (+1 inside, -1
    outside, 0 where the lesion's box is unknown). Training and serving both end here."""
    inputs = standardise(pixels, mean, std)
    if not lesion_channel:
        return inputs
    inputs = inputs.clone()
    inputs[2] = 0.0 if marker is None else marker[0] * 2 - 1
    return inputs


def build_resnet18() -> torch.nn.Module:
    """torchvision's ResNet18 with a two-class head (benign, malignant)."""
    network: torch.nn.Module = torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))
    return network
