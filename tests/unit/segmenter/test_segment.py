"""Segment Anything wrapped for lesions: model loading, masks, RLE, ROI crops, the lesion rule."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from branet_segmenter.segment import (
    CheckpointError,
    LesionSegmenter,
    bounding_box,
    describe,
    encode_rle,
    lesion_likeness,
    roi_crop,
)
from branet_shared.schemas import BoundingBox, Modality
from tests.images import lesion_array
from tests.models import build_tiny_sam


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    torch.save(build_tiny_sam().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def segmenter() -> LesionSegmenter:
    # The registry only builds full-size SAMs; the toy one is handed in directly.
    return LesionSegmenter(build_tiny_sam(), "vit_b", "f" * 64)


def decode_rle(size: tuple[int, int], counts: list[int]) -> np.ndarray:
    flat = np.concatenate([np.full(n, i % 2, dtype=bool) for i, n in enumerate(counts)])
    return flat.reshape(size, order="F")


@pytest.mark.parametrize("first", [False, True])
def test_rle_round_trips(first: bool) -> None:
    mask = np.zeros((7, 5), dtype=bool)
    mask[2:5, 1:4] = True
    mask[0, 0] = first

    rle = encode_rle(mask)

    assert rle.size == (7, 5)
    assert (decode_rle(rle.size, rle.counts) == mask).all()


def test_bounding_box_is_exclusive() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:5, 3:8] = True

    assert bounding_box(mask) == BoundingBox(x0=3, y0=2, x1=8, y1=5)


def test_roi_crop_adds_margin_and_stays_inside() -> None:
    image = Image.new("L", (100, 80))

    assert roi_crop(image, BoundingBox(x0=40, y0=30, x1=60, y1=50), 0.5).size == (40, 40)
    assert roi_crop(image, BoundingBox(x0=0, y0=0, x1=20, y1=20), 0.5).size == (30, 30)


def test_dark_compact_blob_is_the_most_lesion_like_in_ultrasound() -> None:
    gray = lesion_array(96, 80)
    yy, xx = np.mgrid[0:80, 0:96]
    lesion = ((xx - 48) / 19) ** 2 + ((yy - 40) / 13) ** 2 < 1
    tissue = np.zeros_like(lesion)
    tissue[5:25, 5:30] = True
    border = np.zeros_like(lesion)
    border[0:20, :] = True

    assert lesion_likeness(lesion, gray, Modality.ULTRASOUND) > 0
    assert lesion_likeness(lesion, gray, Modality.ULTRASOUND) > lesion_likeness(
        tissue, gray, Modality.ULTRASOUND
    )
    assert lesion_likeness(border, gray, Modality.ULTRASOUND) == 0
    # Mammographic masses are bright: the dark blob is not one.
    assert lesion_likeness(lesion, gray, Modality.MAMMOGRAPHY) == 0


def test_checkpoint_with_wrong_hash_is_refused(checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match="SHA-256"):
        LesionSegmenter.load("vit_b", checkpoint, "0" * 64)


def test_missing_or_foreign_checkpoint_is_refused(tmp_path: Path, checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        LesionSegmenter.load("vit_b", tmp_path / "nope.pth", None)
    # The toy weights do not fit the full-size ViT-B.
    with pytest.raises(CheckpointError, match="not a vit_b"):
        LesionSegmenter.load("vit_b", checkpoint, None)


def test_prompted_mode_returns_a_mask_of_the_image_size(segmenter: LesionSegmenter) -> None:
    rgb = np.stack([lesion_array(96, 80)] * 3, axis=-1)

    found = segmenter.prompted(rgb, BoundingBox(x0=20, y0=20, x1=70, y1=60))

    assert found.mask.shape == (80, 96)
    assert found.mask.dtype == bool


def test_describe_reports_no_lesion_as_such(segmenter: LesionSegmenter) -> None:
    answer = describe(None, Image.new("L", (10, 10)), segmenter.ref, 0.1, 0.0)

    assert answer.lesion_found is False
    assert answer.mask is None
    assert answer.roi_png is None
