"""The classifier service's model: a ResNet18 per modality, served in the fastest precision
this CPU runs faithfully, and the task that plugs it into the model runtime.

The class has the four steps every BraNet model has — load, preprocess, predict, postprocess —
so the service, the training workbench's evaluation and the benchmarks run a model the same way.
"""

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from PIL import Image

from branet_classifier.int8 import Int8Network, int8_runtime_available
from branet_classifier.model import (
    CLASSES,
    ClassifierCard,
    LesionCrop,
    build_resnet18,
    calibrated_probabilities,
    card_caveats,
    fitted_box,
    image_to_tensor,
    lesion_marker,
    model_tensor,
)
from branet_runtime.compilation import compile_frozen, warm_up_or_run_eager
from branet_runtime.files import fetched, load_weights, read_card, verify_file
from branet_runtime.precision import Precision, ResolvedPrecision, resolve_precision
from branet_shared.errors import ModelFileError
from branet_shared.schemas import (
    BoundingBox,
    ClassifyResponse,
    Label,
    Modality,
    ModelInfo,
    ModelRef,
    Probabilities,
)

log = logging.getLogger(__name__)
# A reduced-precision path must give fp32's label for at least this share of images.
AGREEMENT_FLOOR = 0.995


def serving_precision(requested: Precision, has_int8: bool) -> ResolvedPrecision:
    """auto: int8 where the card ships an int8 artefact and ONNX Runtime is installed, else
    bf16 where the CPU has bf16 units, else fp32."""
    return resolve_precision(requested, int8_by_default=has_int8 and int8_runtime_available())


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
        precision: Precision = "fp32",
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
        """Run each batch size once, so compilation happens now, not in a user's request;
        where compilation fails the model serves eager."""
        size = self.card.input_size

        def run_each_batch_size() -> None:
            for batch_size in self.batch_sizes or (1,):
                self.predict(torch.zeros(batch_size, 3, size, size))

        def serve_eager() -> None:
            self.compiled = False
            self.serving = self._serving_path()

        warm_up_or_run_eager(run_each_batch_size, self.compiled, serve_eager, self.card.name)

    @classmethod
    def load(
        cls, card_path: Path, precision: Precision = "fp32", compiled: bool = False
    ) -> "ResNet18Classifier":
        card = read_card(card_path, ClassifierCard)
        weights_path = card_path.parent / card.weights_file
        verify_file(weights_path, card.weights_sha256, "weights file")
        network = build_resnet18()
        load_weights(network, weights_path, "ResNet18")
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


class ClassifierTask:
    """One modality's classifier as a model-runtime task: its card and weights in `model_dir`
    (a folder or `gs://…/`), served in `precision`, compiled or not."""

    def __init__(
        self,
        modality: Modality,
        model_dir: str | Path,
        cache_dir: Path,
        precision: Precision = "auto",
        compiled: bool = False,
    ) -> None:
        self.modality = modality
        self.model_dir, self.cache_dir = model_dir, cache_dir
        self.precision, self.compiled = precision, compiled
        self._model: ResNet18Classifier | None = None

    @property
    def check(self) -> str:
        return self.modality.value

    @property
    def title(self) -> str:
        return f"{self.modality.value} classifier"

    @property
    def model(self) -> ResNet18Classifier:
        if self._model is None:
            raise ModelFileError(f"the {self.title} is not loaded")
        return self._model

    def load(self) -> None:
        folder = fetched(self.model_dir, self.cache_dir)
        card_path = folder / f"{self.modality.value}.json"
        self._model = ResNet18Classifier.load(card_path, self.precision, self.compiled)

    def warm_up(self) -> None:
        self.model.warm_up()

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model.predict(batch)

    @property
    def info(self) -> ModelInfo:
        return self.model.info
