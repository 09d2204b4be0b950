"""Lesion segmentation with Segment Anything.

Prompted mode refines a box drawn by the user into a mask. Automatic mode lets SAM propose
masks on a grid of points and keeps the most lesion-like one by a documented rule per modality
(`lesion_likeness`), or reports that none was found.
"""

import logging
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from branet_runtime.allocator import keep_freed_memory
from branet_runtime.compilation import warm_up_or_run_eager
from branet_runtime.files import fetched, verify_file
from branet_runtime.precision import Precision, resolve_precision
from branet_segmenter.acceleration import FastImageEncoder, Int8DynamicLinear, accelerate
from branet_segmenter.branet_sam import BraNetSegmenter
from branet_segmenter.checkpoints import OFFICIAL_CHECKPOINTS
from branet_segmenter.embeddings import Embedding, EmbeddingCache
from branet_segmenter.responses import BoolMask, Segmentation, segment_response
from branet_shared.errors import ModelFileError
from branet_shared.images import (
    ValidatedImage,
    bounding_box,
    check_prompt_fits,
    validate_image,
)
from branet_shared.schemas import (
    BoundingBox,
    Modality,
    ModelInfo,
    ModelRef,
    Point,
    Prompt,
    SegmentResponse,
)

if TYPE_CHECKING:  # the settings module reads `AutomaticSettings` from this one
    from branet_segmenter.settings import SegmenterSettings

RGBImage = npt.NDArray[np.uint8]


log = logging.getLogger(__name__)


def lesion_likeness(mask: BoolMask, gray: npt.NDArray[np.uint8], modality: Modality) -> float:
    """How lesion-like a proposed mask is, 0 when it cannot be one.

    - size: 0.2 % to 40 % of the image (smaller is speckle, larger is tissue or background);
    - away from the border: masks touching it are background or skin line;
    - compact: area over bounding-box area (lesions are blob-shaped, ducts and edges are not);
    - contrast: ultrasound lesions are darker (hypoechoic), mammographic masses brighter,
      than the ring of tissue around them.
    """
    fraction = mask.sum() / mask.size
    if not 0.002 <= fraction <= 0.40:
        return 0.0
    if mask[0, :].any() or mask[-1, :].any() or mask[:, 0].any() or mask[:, -1].any():
        return 0.0
    box = bounding_box(mask)
    compactness = mask.sum() / ((box.x1 - box.x0) * (box.y1 - box.y0))
    pad_x, pad_y = (box.x1 - box.x0) // 2, (box.y1 - box.y0) // 2
    ring = np.zeros_like(mask)
    ring[max(0, box.y0 - pad_y) : box.y1 + pad_y, max(0, box.x0 - pad_x) : box.x1 + pad_x] = True
    ring &= ~mask
    if not ring.any():
        return 0.0
    inside, around = float(gray[mask].mean()), float(gray[ring].mean())
    contrast = (around - inside) if modality is Modality.ULTRASOUND else (inside - around)
    return float(compactness * max(contrast, 0.0) / 255.0)


def build_toy_sam(checkpoint: str | None = None) -> Sam:
    """SAM from the package's own classes at toy size: 256 px input, 32-dim, 2 blocks.

    It has no released weights; it exists so tests, the evaluation script and the benchmarks
    can run the real code paths without a 375 MB checkpoint. Never for real use.
    """
    size, patch, dim = 256, 16, 32
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=size,
            patch_size=patch,
            embed_dim=dim,
            depth=2,
            num_heads=2,
            mlp_ratio=2,
            out_chans=dim,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=4,
            global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(size // patch, size // patch),
            input_image_size=(size, size),
            mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=dim,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            num_multimask_outputs=3,
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
    )
    if checkpoint is not None:
        sam.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return sam


BUILDERS: dict[str, Callable[..., Sam]] = {**sam_model_registry, "toy": build_toy_sam}
MODEL_TYPES = ("vit_b", "vit_l", "vit_h", "toy")


@dataclass(frozen=True)
class AutomaticSettings:
    """The cost bound of automatic mode. SAM decodes one mask set per point prompt: on the
    `uniform` grid, points_per_side² per crop; on the `lesion` grid, `lesion_points` in all."""

    points_per_side: int = 16
    crop_n_layers: int = 0
    max_side: int = 512
    grid: Literal["uniform", "lesion"] = "uniform"
    lesion_points: int = 24


def lesion_point_grid(
    gray: npt.NDArray[np.uint8], modality: Modality, count: int, cells: int = 16
) -> npt.NDArray[np.float64]:
    """`count` point prompts where a lesion is likely, as (x, y) in 0..1.

    The image is cut into cells×cells; the points are the centres of the darkest cells for
    ultrasound (lesions are hypoechoic) or the brightest for mammography (masses are dense),
    leaving out the outer ring of cells, where scan borders, text and skin lines are.
    """
    height, width = gray.shape
    rows = np.linspace(0, height, cells + 1).astype(int)
    cols = np.linspace(0, width, cells + 1).astype(int)
    means = np.array(
        [
            [gray[rows[i] : rows[i + 1], cols[j] : cols[j + 1]].mean() for j in range(cells)]
            for i in range(cells)
        ]
    )
    interior = [(i, j) for i in range(1, cells - 1) for j in range(1, cells - 1)]
    darkest_first = modality is Modality.ULTRASOUND
    interior.sort(key=lambda cell: means[cell] if darkest_first else -means[cell])
    chosen = interior[:count]
    return np.array([((j + 0.5) / cells, (i + 0.5) / cells) for i, j in chosen])


class LesionSegmenter:
    def __init__(
        self, sam: Sam, model_type: str, checkpoint_sha256: str, cache: EmbeddingCache | None = None
    ) -> None:
        self.sam = sam.eval()
        self.model_type = model_type
        self.checkpoint_sha256 = checkpoint_sha256
        self.cache = cache or EmbeddingCache(max_entries=8)

    @classmethod
    def load(
        cls,
        model_type: str,
        checkpoint: Path,
        expected_sha256: str | None = None,
        cache: EmbeddingCache | None = None,
        precision: Precision = "fp32",
        compiled: bool = False,
    ) -> "LesionSegmenter":
        """Build `model_type` from `checkpoint`, refusing any file but the expected one.

        The expected SHA-256 is the configured one, else the official checkpoint's. The image
        encoder runs in `precision`, compiled or not (see `acceleration`).
        """
        if model_type not in BUILDERS:
            raise ModelFileError(f"unknown SAM model type {model_type!r}")
        official = OFFICIAL_CHECKPOINTS.get(model_type)
        expected = expected_sha256 or (official.sha256 if official else None)
        pinned_by = "the configured" if expected_sha256 else f"the official {model_type}"
        actual = verify_file(checkpoint, expected, "SAM checkpoint", pinned_by)
        try:
            sam = BUILDERS[model_type](checkpoint=str(checkpoint))
        except (RuntimeError, KeyError, OSError, pickle.UnpicklingError) as exc:
            first_line = (str(exc).strip().splitlines() or ["unreadable"])[0]
            raise ModelFileError(
                f"{checkpoint} is not a {model_type} SAM checkpoint: {first_line}"
            ) from None
        # int8 only by name (no `int8_by_default`): it saves 12 % of an embedding on 2 vCPUs
        # for ~8 s more compilation, and its masks were checked on random weights only.
        return cls(
            accelerate(sam, resolve_precision(precision), compiled), model_type, actual, cache
        )

    @property
    def runtime(self) -> str:
        """The image encoder's precision and whether it is compiled."""
        encoder = self.sam.image_encoder
        if not isinstance(encoder, FastImageEncoder):
            return "fp32, eager"
        int8 = any(isinstance(m, Int8DynamicLinear) for m in encoder.modules())
        dtype = "bf16" if encoder.dtype == torch.bfloat16 else "fp32"
        compiled = "torch.compile" if encoder.compiled is not None else "eager"
        return f"{'int8 linear layers + ' if int8 else ''}{dtype}, {compiled}"

    @property
    def ref(self) -> ModelRef:
        return ModelRef(
            name=f"sam_{self.model_type}",
            version=self.checkpoint_sha256[:12],
            sha256=self.checkpoint_sha256,
        )

    def warm_up(self) -> None:
        """One embedding of a blank image, so compilation happens now, not in a request;
        where compilation fails the encoder runs eager."""
        size = self.sam.image_encoder.img_size
        blank = np.zeros((size, size, 3), dtype=np.uint8)
        encoder = self.sam.image_encoder
        compiled = isinstance(encoder, FastImageEncoder) and encoder.compiled is not None

        def embed_blank() -> None:
            with torch.inference_mode():
                SamPredictor(self.sam).set_image(blank)

        def run_eager() -> None:
            assert isinstance(encoder, FastImageEncoder)
            encoder.compiled = None

        warm_up_or_run_eager(embed_blank, compiled, run_eager, "the SAM image encoder")

    def _predictor(self, rgb: RGBImage, image_sha256: str) -> SamPredictor:
        """A predictor with the image's embedding, from the cache when it is there."""
        predictor = SamPredictor(self.sam)
        cached = self.cache.get(image_sha256)
        if cached is None:
            predictor.set_image(rgb)
            self.cache.put(
                image_sha256,
                Embedding(predictor.features, predictor.original_size, predictor.input_size),
            )
        else:
            # SamPredictor.set_image stores exactly these; segment-anything 1.0 is frozen.
            predictor.features = cached.features
            predictor.original_size = cached.original_size
            predictor.input_size = cached.input_size
            predictor.is_image_set = True
        return predictor

    def prompted(
        self,
        rgb: RGBImage,
        image_sha256: str,
        box: BoundingBox | None,
        points: Sequence[Point] = (),
    ) -> Segmentation:
        with torch.inference_mode():
            predictor = self._predictor(rgb, image_sha256)
            masks, scores, _ = predictor.predict(
                point_coords=np.array([[p.x, p.y] for p in points]) if points else None,
                point_labels=np.array([p.label for p in points]) if points else None,
                box=np.array([box.x0, box.y0, box.x1, box.y1]) if box else None,
                multimask_output=True,
            )
        best = int(np.argmax(scores))
        return Segmentation(mask=masks[best].astype(bool), score=float(scores[best]))

    def automatic(
        self, rgb: RGBImage, modality: Modality, settings: AutomaticSettings
    ) -> Segmentation | None:
        """The most lesion-like of SAM's proposals (`lesion_likeness` × predicted IoU)."""
        image = Image.fromarray(rgb)
        scale = min(1.0, settings.max_side / max(image.size))
        small = image.resize((round(image.width * scale), round(image.height * scale)))
        gray = np.asarray(small.convert("L"))
        if settings.grid == "lesion":
            points = lesion_point_grid(gray, modality, settings.lesion_points)
            generator = SamAutomaticMaskGenerator(
                self.sam, points_per_side=None, point_grids=[points], crop_n_layers=0
            )
        else:
            generator = SamAutomaticMaskGenerator(
                self.sam,
                points_per_side=settings.points_per_side,
                crop_n_layers=settings.crop_n_layers,
            )
        with torch.inference_mode():
            proposals = generator.generate(np.asarray(small))
        ranked = [
            (lesion_likeness(p["segmentation"], gray, modality) * p["predicted_iou"], p)
            for p in proposals
        ]
        ranked = [(score, p) for score, p in ranked if score > 0]
        if not ranked:
            return None
        _, best = max(ranked, key=lambda item: item[0])
        full = Image.fromarray(best["segmentation"]).resize(image.size, Image.Resampling.NEAREST)
        return Segmentation(mask=np.asarray(full, dtype=bool), score=float(best["predicted_iou"]))

    def segment(
        self,
        upload: ValidatedImage,
        modality: Modality,
        prompt: Prompt,
        automatic: AutomaticSettings,
        margin: float,
    ) -> SegmentResponse:
        """Prompted mode when the prompt has a box or points, else automatic mode."""
        started = time.perf_counter()
        rgb = np.asarray(upload.image.convert("RGB"))
        found: Segmentation | None
        if prompt.given:
            found = self.prompted(rgb, upload.sha256, prompt.box, prompt.points)
        else:
            found = self.automatic(rgb, modality, automatic)
        return segment_response(found, upload.image, self.ref, margin, started, prompt.box)


@dataclass(frozen=True)
class SegmentationRequest:
    """One upload to segment: its bytes, as sent, and the prompt, if any."""

    data: bytes
    modality: Modality
    prompt: Prompt


class SegmenterTask:
    """The configured SAM as a model-runtime task."""

    def __init__(self, settings: "SegmenterSettings") -> None:
        self.settings = settings
        self._segmenter: LesionSegmenter | BraNetSegmenter | None = None

    @property
    def check(self) -> str:
        return "sam"

    @property
    def title(self) -> str:
        if self.settings.checkpoint is None:
            return "branet lesion segmenter"
        return f"sam_{self.settings.model_type}"

    @property
    def segmenter(self) -> "LesionSegmenter | BraNetSegmenter":
        if self._segmenter is None:
            raise ModelFileError(f"{self.title} is not loaded")
        return self._segmenter

    def load(self) -> None:
        settings = self.settings
        if settings.keep_freed_memory and not keep_freed_memory():
            log.info("freed memory goes back to the kernel: the C library is not glibc")
        if settings.checkpoint is None:
            self._segmenter = self._own_segmenter()
            return
        checkpoint = fetched(settings.checkpoint, settings.cache_dir)
        try:
            self._segmenter = LesionSegmenter.load(
                settings.model_type,
                checkpoint,
                settings.checkpoint_sha256,
                EmbeddingCache(settings.embedding_cache_entries),
                settings.precision,
                settings.compile,
            )
        except ModelFileError as exc:
            raise ModelFileError(f"{exc} (check SEGMENTER_CHECKPOINT)") from None

    def _own_segmenter(self) -> "BraNetSegmenter":
        settings = self.settings
        cache = EmbeddingCache(settings.embedding_cache_entries)
        try:
            card = fetched(settings.model_card, settings.cache_dir)
            return BraNetSegmenter.load(card, cache)
        except ModelFileError as exc:
            raise ModelFileError(
                f"{exc} (train one with branet-train-segmenter, or set SEGMENTER_CHECKPOINT to"
                " a SAM checkpoint)"
            ) from None

    def warm_up(self) -> None:
        self.segmenter.warm_up()

    def run(self, request: SegmentationRequest) -> SegmentResponse:
        """Validate the upload and segment it: prompted with a box or points, else automatic."""
        upload = validate_image(request.data)
        check_prompt_fits(request.prompt, upload.image)
        segmenter, margin = self.segmenter, self.settings.roi_margin
        if isinstance(segmenter, BraNetSegmenter):  # one pass, no grid of prompts
            return segmenter.segment(upload, request.modality, request.prompt, margin)
        return segmenter.segment(
            upload, request.modality, request.prompt, self.settings.automatic, margin
        )

    @property
    def info(self) -> ModelInfo:
        segmenter = self.segmenter
        info = ModelInfo(
            name=segmenter.ref.name,
            version=segmenter.ref.version,
            task="segmentation",
            architecture=f"segment-anything {self.settings.model_type}",
            sha256=segmenter.checkpoint_sha256,
            runtime=segmenter.runtime,
        )
        if not isinstance(segmenter, BraNetSegmenter):
            return info
        card = segmenter.card
        return info.model_copy(
            update={
                "architecture": f"segment-anything, {card.architecture.removeprefix('sam-')}"
                " image encoder",
                "metrics": card.metrics,
                "description": card.description,
            }
        )
