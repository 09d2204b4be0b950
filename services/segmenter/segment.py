"""Lesion segmentation with Segment Anything.

Prompted mode refines a box drawn by the user into a mask. Automatic mode lets SAM propose
masks on a grid of points and keeps the most lesion-like one by a documented rule per modality
(`lesion_likeness`), or reports that none was found.
"""

import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry

from branet_shared.checksums import sha256_of_file
from branet_shared.images import encode_png
from branet_shared.schemas import BoundingBox, Mask, Modality, ModelRef, SegmentResponse

BoolMask = npt.NDArray[np.bool_]


class CheckpointError(Exception):
    """A SAM checkpoint is configured but cannot be used; the message says why."""


def encode_rle(mask: BoolMask) -> Mask:
    """COCO uncompressed RLE: run lengths over the column-major mask, starting with zeros."""
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    boundaries = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(boundaries).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return Mask(size=(mask.shape[0], mask.shape[1]), counts=counts)


def bounding_box(mask: BoolMask) -> BoundingBox:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return BoundingBox(x0=int(cols[0]), y0=int(rows[0]), x1=int(cols[-1]) + 1, y1=int(rows[-1]) + 1)


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


@dataclass(frozen=True)
class Segmentation:
    mask: BoolMask
    score: float


class LesionSegmenter:
    def __init__(self, sam: Any, model_type: str, checkpoint_sha256: str) -> None:
        self.sam = sam
        self.model_type = model_type
        self.checkpoint_sha256 = checkpoint_sha256

    @classmethod
    def load(
        cls, model_type: str, checkpoint: Path, expected_sha256: str | None
    ) -> "LesionSegmenter":
        if not checkpoint.is_file():
            raise CheckpointError(f"SAM checkpoint {checkpoint} does not exist")
        actual = sha256_of_file(checkpoint)
        if expected_sha256 is not None and actual != expected_sha256:
            raise CheckpointError(
                f"SAM checkpoint {checkpoint} has SHA-256 {actual}, not the expected one"
            )
        try:
            sam = sam_model_registry[model_type](checkpoint=str(checkpoint))
        except (RuntimeError, KeyError, OSError) as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"{checkpoint} is not a {model_type} SAM checkpoint: {first_line}"
            ) from None
        return cls(sam.eval(), model_type, actual)

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=f"sam_{self.model_type}", version=self.checkpoint_sha256[:12])

    def prompted(self, rgb: npt.NDArray[np.uint8], box: BoundingBox) -> Segmentation:
        predictor = SamPredictor(self.sam)
        with torch.inference_mode():
            predictor.set_image(rgb)
            masks, scores, _ = predictor.predict(
                box=np.array([box.x0, box.y0, box.x1, box.y1]), multimask_output=True
            )
        best = int(np.argmax(scores))
        return Segmentation(mask=masks[best].astype(bool), score=float(scores[best]))

    def automatic(
        self, rgb: npt.NDArray[np.uint8], modality: Modality, points_per_side: int, max_side: int
    ) -> Segmentation | None:
        image = Image.fromarray(rgb)
        scale = min(1.0, max_side / max(image.size))
        small = image.resize((round(image.width * scale), round(image.height * scale)))
        generator = SamAutomaticMaskGenerator(self.sam, points_per_side=points_per_side)
        with torch.inference_mode():
            proposals = generator.generate(np.asarray(small))
        gray = np.asarray(small.convert("L"))
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


def roi_crop(image: Image.Image, box: BoundingBox, margin: float) -> Image.Image:
    """The box widened by `margin` of its size on each side, clipped to the image."""
    dx, dy = round((box.x1 - box.x0) * margin), round((box.y1 - box.y0) * margin)
    return image.crop(
        (
            max(0, box.x0 - dx),
            max(0, box.y0 - dy),
            min(image.width, box.x1 + dx),
            min(image.height, box.y1 + dy),
        )
    )


def describe(
    segmentation: Segmentation | None,
    image: Image.Image,
    ref: ModelRef,
    margin: float,
    started: float,
) -> SegmentResponse:
    elapsed = (time.perf_counter() - started) * 1000
    if segmentation is None or not segmentation.mask.any():
        return SegmentResponse(lesion_found=False, model=ref, inference_ms=elapsed)
    box = bounding_box(segmentation.mask)
    mask_image = Image.fromarray(segmentation.mask.astype(np.uint8) * 255)
    return SegmentResponse(
        lesion_found=True,
        bbox=box,
        area=int(segmentation.mask.sum()),
        score=segmentation.score,
        mask=encode_rle(segmentation.mask),
        mask_png=_b64(encode_png(mask_image)),
        roi_png=_b64(encode_png(roi_crop(image, box, margin))),
        model=ref,
        inference_ms=elapsed,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
