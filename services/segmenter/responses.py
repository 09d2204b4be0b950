"""A segmentation as the segmenter answers it: the mask (COCO RLE and PNG), its box, the ROI
crop; or no lesion, with the caller's box as the ROI where one was given."""

import base64
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from branet_shared.images import bounding_box, encode_png, roi_crop
from branet_shared.schemas import BoundingBox, Mask, ModelRef, SegmentResponse

BoolMask = npt.NDArray[np.bool_]


def encode_rle(mask: BoolMask) -> Mask:
    """COCO uncompressed RLE: run lengths over the column-major mask, starting with zeros."""
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    boundaries = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(boundaries).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return Mask(size=(mask.shape[0], mask.shape[1]), counts=counts)


@dataclass(frozen=True)
class Segmentation:
    mask: BoolMask
    score: float


def segment_response(
    segmentation: Segmentation | None,
    image: Image.Image,
    ref: ModelRef,
    margin: float,
    started: float,
    given_box: BoundingBox | None = None,
) -> SegmentResponse:
    """The mask, its box and the ROI crop. When nothing is found inside a caller's box, the
    box itself is the ROI: the caller said where the lesion is, and the classifier does as
    well on a box drawn to within a tenth of the lesion's size as on its outline's."""
    elapsed = (time.perf_counter() - started) * 1000
    if segmentation is None or not segmentation.mask.any():
        if given_box is None:
            return SegmentResponse(lesion_found=False, model=ref, inference_ms=elapsed)
        crop = roi_crop(image, given_box, margin)
        return SegmentResponse(
            lesion_found=False,
            bbox=given_box,
            roi_png=_b64(encode_png(crop)),
            model=ref,
            inference_ms=elapsed,
        )
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
