"""ResNet18 benign/malignant classifiers, one per modality, described by a model card.

A model on disk is two files in the model folder: `<modality>.json` (a `ClassifierCard`) and
the safetensors weights it names, whose SHA-256 the card pins. The class has the four steps
every BraNet model has — load, preprocess, predict, postprocess — so the service, the training
and evaluation scripts and the benchmarks all run a model the same way.
"""

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file
from torchvision.transforms.v2 import functional as tvf

from branet_classifier.int8 import Int8Card, Int8Network, int8_runtime_available
from branet_shared.checksums import sha256_of_file
from branet_shared.compilation import compile_frozen
from branet_shared.hardware import resolve_precision
from branet_shared.images import roi_rect
from branet_shared.schemas import (
    BoundingBox,
    Caveat,
    ClassifyResponse,
    Label,
    Modality,
    ModelInfo,
    ModelRef,
    Probabilities,
)

log = logging.getLogger(__name__)
CLASSES: tuple[Label, Label] = (Label.BENIGN, Label.MALIGNANT)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# auto: int8 where the card ships an int8 artefact (and ONNX Runtime is installed), else bf16
# where the CPU has bf16 units, else fp32.
ClassifierPrecision = Literal["auto", "fp32", "bf16", "int8"]
ServingPrecision = Literal["fp32", "bf16", "int8"]
# A reduced-precision path must give fp32's label for at least this share of images.
AGREEMENT_FLOOR = 0.995


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


class ModelFileError(Exception):
    """A model is configured but cannot be used; the message says why."""


def verify_file(path: Path, sha256: str, what: str) -> None:
    if not path.is_file():
        raise ModelFileError(f"{what} {path} is missing")
    if sha256_of_file(path) != sha256:
        raise ModelFileError(f"{what} {path} does not match the card's SHA-256")


def serving_precision(requested: ClassifierPrecision, has_int8: bool) -> ServingPrecision:
    if requested == "int8" or (requested == "auto" and has_int8 and int8_runtime_available()):
        return "int8"
    return resolve_precision(requested)


def agreement(
    reference: torch.Tensor, reduced: torch.Tensor, threshold: float = 0.5
) -> dict[str, float]:
    """Label agreement (malignant from P(malignant) = `threshold`) and |ΔP(malignant)| of two
    N×2 probability tensors."""
    difference = (reference[:, 1] - reduced[:, 1]).abs()
    same = (reference[:, 1] >= threshold) == (reduced[:, 1] >= threshold)
    return {
        "images": float(len(reference)),
        "label_agreement": float(same.float().mean()),
        "max_abs_dp_malignant": float(difference.max()),
        "mean_abs_dp_malignant": float(difference.mean()),
    }


def fitted_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """Where an image lands in the S×S input when its aspect is kept: left, top, width, height."""
    scale = size / max(width, height)
    fitted_w, fitted_h = max(1, round(width * scale)), max(1, round(height * scale))
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


def normalise(
    pixels: torch.Tensor, mean: tuple[float, float, float], std: tuple[float, float, float]
) -> torch.Tensor:
    """1×S×S in [0, 1] to the 3×S×S normalised input ResNet18 expects."""
    normalised: torch.Tensor = tvf.normalize(pixels.expand(3, -1, -1), list(mean), list(std))
    return normalised


@dataclass(frozen=True)
class LesionCrop:
    """What the classifier is shown: an image and, where known, the lesion's box within it."""

    image: Image.Image
    lesion: BoundingBox | None = None


def crop_around(
    image: Image.Image, box: BoundingBox, rect: tuple[int, int, int, int]
) -> LesionCrop:
    """`image` cut to `rect` (left, top, right, bottom), with the lesion's box moved into it."""
    left, top = rect[0], rect[1]
    inside = BoundingBox(x0=box.x0 - left, y0=box.y0 - top, x1=box.x1 - left, y1=box.y1 - top)
    return LesionCrop(image.crop(rect), inside)


def crop_to_lesion(image: Image.Image, box: BoundingBox | None, margin: float) -> LesionCrop:
    """The box with `margin` of context (`roi_rect`), and the box within that crop; without a
    box, the image as it is."""
    if box is None:
        return LesionCrop(image)
    return crop_around(image, box, roi_rect(image, box, margin))


def lesion_marker(crop: LesionCrop, size: int, keep_aspect: bool) -> torch.Tensor | None:
    """The ellipse inscribed in the lesion's box, 1×S×S in {0, 1}, resized as the image is.

    It tells the model which part of the crop is the lesion and which is context. The
    ellipse, not the outline: a model trained on the annotators' outlines did no better with
    them than with this ellipse, and worse with outlines a tenth off (models/README.md).
    """
    if crop.lesion is None:
        return None
    box = crop.lesion
    marker = Image.new("L", crop.image.size, 0)
    ImageDraw.Draw(marker).ellipse((box.x0, box.y0, box.x1 - 1, box.y1 - 1), fill=255)
    return (image_to_tensor(marker, size, keep_aspect) > 0.5).float()


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
    inputs = normalise(pixels, mean, std)
    if not lesion_channel:
        return inputs
    inputs = inputs.clone()
    inputs[2] = 0.0 if marker is None else marker[0] * 2 - 1
    return inputs


def heatmap_overlay(
    image: Image.Image, cam: torch.Tensor, size: int, keep_aspect: bool
) -> Image.Image:
    """`cam` (h×w in 0..1 over the S×S input) mapped back onto the image and blended in red
    over its grayscale; with `keep_aspect`, the padding is cut off first."""
    heat = Image.fromarray((cam.numpy() * 255).astype("uint8"))
    if keep_aspect:
        left, top, width, height = fitted_box(image.width, image.height, size)
        heat = heat.resize((size, size), Image.Resampling.BILINEAR)
        heat = heat.crop((left, top, left + width, top + height))
    heat = heat.resize(image.size, Image.Resampling.BILINEAR)
    gray = image.convert("L")
    red = Image.merge(
        "RGB", (Image.new("L", image.size, 255), *[Image.new("L", image.size, 0)] * 2)
    )
    alpha = heat.point(lambda value: int(value * 0.6))  # at most 60 % red where the heat is 1
    return Image.composite(red, gray.convert("RGB"), alpha)


def build_resnet18() -> torch.nn.Module:
    """torchvision's ResNet18 with a two-class head (benign, malignant)."""
    network: torch.nn.Module = torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))
    return network


# Compiled graphs have static shapes: one per batch size, so batches come in these sizes.
COMPILED_BATCH_SIZES = (1, 2, 4, 8)


def inference_network(
    network: torch.nn.Module, precision: Literal["fp32", "bf16"], compiled: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The serving copy of `network`: in `precision`, channels-last, optionally compiled.

    bf16 weights (not autocast) avoid a cast per layer; compiling with frozen weights lets
    Inductor fold batch norm into the convolutions and pick oneDNN kernels per shape. On a
    2-core AVX-512 BF16 CPU at 112 px, batch 1: fp32 10.2 ms, bf16 7.5 ms, compiled 4.0 ms;
    batch 8: 52, 31 and 20 ms (bench/suite.py).
    """
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    serving = copy.deepcopy(network).eval().to(dtype).to(memory_format=torch.channels_last)
    if not compiled:
        return serving
    limit: int = torch._dynamo.config.cache_size_limit
    torch._dynamo.config.cache_size_limit = max(limit, 2 * len(COMPILED_BATCH_SIZES))
    return compile_frozen(serving, dynamic=False)


class ResNet18Classifier:
    def __init__(
        self,
        card: ClassifierCard,
        network: torch.nn.Module,
        precision: ClassifierPrecision = "fp32",
        compiled: bool = False,
        int8: Int8Network | None = None,
    ) -> None:
        """`int8`: the card's int8 artefact, loaded; needed for precision int8."""
        self.card = card
        # fp32 eager stays for Grad-CAM, which needs gradients; answers come from `serving`.
        self.network = network.eval()
        self.int8 = int8
        self.precision = serving_precision(precision, int8 is not None)
        if self.precision == "int8" and int8 is None:
            raise ModelFileError(f"{card.name} has no int8 artefact (make one: branet-quantize)")
        self.compiled = compiled and self.precision != "int8"
        self.serving = self._serving_path()
        self.caveats = card_caveats(card)

    def _serving_path(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function from a float N×3×S×S batch to logits, in the serving precision."""
        precision = self.precision
        if precision == "int8":
            assert self.int8 is not None
            return self.int8
        module = inference_network(self.network, precision, self.compiled)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32

        def forward(batch: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = module(batch.to(dtype=dtype, memory_format=torch.channels_last))
            return logits

        return forward

    @property
    def batch_sizes(self) -> tuple[int, ...] | None:
        """The batch sizes `predict` is fast at; None: any."""
        return COMPILED_BATCH_SIZES if self.compiled else None

    def warm_up(self) -> None:
        """Run each batch size once, so compilation happens now, not in a user's request.

        Where compilation fails (no C++ compiler, an unsupported CPU) the model serves eager.
        """
        size = self.card.input_size
        try:
            for batch_size in self.batch_sizes or (1,):
                self.predict(torch.zeros(batch_size, 3, size, size))
        except Exception:  # Inductor raises many kinds; any of them means "run eager"
            if not self.compiled:
                raise
            log.warning("compiling %s failed; serving it eager", self.card.name, exc_info=True)
            self.compiled = False
            self.serving = self._serving_path()

    @classmethod
    def load(
        cls, card_path: Path, precision: ClassifierPrecision = "fp32", compiled: bool = False
    ) -> "ResNet18Classifier":
        try:
            card = ClassifierCard.model_validate_json(card_path.read_bytes())
        except FileNotFoundError:
            raise ModelFileError(f"no model card at {card_path}") from None
        except ValueError as exc:
            raise ModelFileError(f"model card {card_path} is invalid: {exc}") from None
        weights_path = card_path.parent / card.weights_file
        verify_file(weights_path, card.weights_sha256, "weights file")
        network = build_resnet18()
        state = {name: tensor.float() for name, tensor in load_file(weights_path).items()}
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelFileError(f"weights in {weights_path} are not a ResNet18: {exc}") from None
        int8 = None
        if card.int8 is not None and serving_precision(precision, True) == "int8":
            int8_path = card_path.parent / card.int8.file
            verify_file(int8_path, card.int8.sha256, "int8 file")
            int8 = Int8Network(int8_path, threads=torch.get_num_threads())
        return cls(card, network, precision, compiled, int8)

    @property
    def ref(self) -> ModelRef:
        return ModelRef(
            name=self.card.name, version=self.card.version, sha256=self.card.weights_sha256
        )

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.card.name,
            version=self.card.version,
            task="classification",
            modality=self.card.modality,
            architecture=self.card.architecture,
            sha256=self.card.weights_sha256,
            metrics=self.card.metrics,
            description=self.card.description,
            runtime=self.runtime,
            decision_threshold=self.card.decision_threshold,
            caveats=self.caveats,
        )

    @property
    def runtime(self) -> str:
        if self.precision == "int8":
            return "int8, ONNX Runtime"
        return f"{self.precision}, {'torch.compile' if self.compiled else 'eager'}"

    def preprocess(self, image: Image.Image, lesion: BoundingBox | None = None) -> torch.Tensor:
        """A normalised 1×3×S×S tensor from an `L` or `RGB` image, exactly as in training;
        `lesion`: the lesion's box within `image`, where known."""
        card = self.card
        pixels = image_to_tensor(image, card.input_size, card.keep_aspect)
        marker = (
            lesion_marker(LesionCrop(image, lesion), card.input_size, card.keep_aspect)
            if card.lesion_channel
            else None  # the shipped models do not read it: no ellipse to draw per request
        )
        return model_tensor(pixels, marker, card.lesion_channel, card.mean, card.std).unsqueeze(0)

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """Class probabilities, N×2, calibrated by the card's temperature and prevalence."""
        with torch.inference_mode():
            logits = self.serving(batch)
            return calibrated_probabilities(
                logits.float(), self.card.temperature, self.card.decision_threshold
            )

    def postprocess(self, probabilities: torch.Tensor, inference_ms: float) -> ClassifyResponse:
        benign, malignant = (float(p) for p in probabilities[0].tolist())
        # Renormalise in double precision so the two always sum to exactly 1.
        total = benign + malignant
        probs = Probabilities(benign=benign / total, malignant=malignant / total)
        threshold = self.card.decision_threshold
        label = Label.MALIGNANT if probs.malignant >= threshold else Label.BENIGN
        return ClassifyResponse(
            label=label,
            probabilities=probs,
            confidence=probs.malignant if label is Label.MALIGNANT else probs.benign,
            decision_threshold=threshold,
            model=self.ref,
            inference_ms=inference_ms,
            caveats=self.caveats,
        )

    def classify(self, image: Image.Image, lesion: BoundingBox | None = None) -> ClassifyResponse:
        started = time.perf_counter()
        probabilities = self.predict(self.preprocess(image, lesion))
        return self.postprocess(probabilities, (time.perf_counter() - started) * 1000)

    def explain(
        self, image: Image.Image, lesion: BoundingBox | None = None
    ) -> tuple[ClassifyResponse, Image.Image]:
        """The classification and a Grad-CAM heatmap of it, overlaid on `image`.

        Grad-CAM (Selvaraju et al., 2017): the last convolutional block's activations, weighted
        by the mean gradient of the predicted class's logit, rectified and scaled to 0..1. Red
        marks what drove the decision.
        """
        started = time.perf_counter()
        batch = self.preprocess(image, lesion)
        # The answer comes from the serving path, so it equals what `classify` says; the map
        # explains that answer's class.
        result = self.postprocess(self.predict(batch), 0.0)
        target = CLASSES.index(result.label)
        captured: dict[str, torch.Tensor] = {}
        block: torch.nn.Module = self.network.layer4  # type: ignore[assignment]

        def keep(_: torch.nn.Module, __: object, output: torch.Tensor) -> None:
            output.retain_grad()
            captured["activations"] = output

        handle = block.register_forward_hook(keep)
        try:
            with torch.enable_grad():
                logits: torch.Tensor = self.network(batch)
                logits[0, target].backward()  # type: ignore[no-untyped-call]
        finally:
            handle.remove()
            self.network.zero_grad(set_to_none=True)
        activations = captured["activations"]
        assert activations.grad is not None
        weights = activations.grad.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * activations).sum(dim=1))[0].detach()
        cam = cam / cam.max() if float(cam.max()) > 0 else cam
        elapsed_ms = (time.perf_counter() - started) * 1000
        return result.model_copy(update={"inference_ms": elapsed_ms}), heatmap_overlay(
            image, cam, self.card.input_size, self.card.keep_aspect
        )


@dataclass
class ClassifierRegistry:
    """The loaded model per modality, and for each missing one the reason."""

    models: dict[Modality, ResNet18Classifier] = field(default_factory=dict)
    missing: dict[Modality, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls, model_dir: Path, precision: ClassifierPrecision = "fp32", compiled: bool = False
    ) -> "ClassifierRegistry":
        registry = cls()
        for modality in Modality:
            try:
                registry.models[modality] = ResNet18Classifier.load(
                    model_dir / f"{modality.value}.json", precision, compiled
                )
            except ModelFileError as exc:
                registry.missing[modality] = str(exc)
        return registry
