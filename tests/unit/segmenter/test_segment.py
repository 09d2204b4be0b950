"""Segment Anything wrapped for lesions: model loading, masks, RLE, ROI crops, the lesion rule."""

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from branet_segmenter.checkpoints import OFFICIAL_CHECKPOINTS
from branet_segmenter.embeddings import Embedding, EmbeddingCache
from branet_segmenter.responses import encode_rle, segment_response
from branet_segmenter.segment import (
    AutomaticSettings,
    LesionSegmenter,
    lesion_likeness,
    lesion_point_grid,
)
from branet_shared.errors import ModelFileError
from branet_shared.images import bounding_box, roi_crop
from branet_shared.schemas import BoundingBox, Modality, Point
from tests.images import decode_rle, lesion_array


@pytest.fixture(scope="module")
def segmenter(sam_checkpoint: Path) -> LesionSegmenter:
    return LesionSegmenter.load("toy", sam_checkpoint, cache=EmbeddingCache(max_entries=2))


RGB = np.stack([lesion_array(96, 80)] * 3, axis=-1)


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


def blob_image(value: int, centre: tuple[int, int]) -> np.ndarray:
    """Mid-grey 160×160 with a 30-pixel square of `value` centred at `centre` (x, y)."""
    gray = np.full((160, 160), 128, dtype=np.uint8)
    x, y = centre
    gray[y - 15 : y + 15, x - 15 : x + 15] = value
    return gray


@pytest.mark.parametrize(
    ("modality", "value"), [(Modality.ULTRASOUND, 20), (Modality.MAMMOGRAPHY, 240)]
)
def test_lesion_grid_prompts_the_lesion_first(modality: Modality, value: int) -> None:
    gray = blob_image(value, centre=(110, 50))
    # The outer ring of cells holds a darker and a brighter strip: scan borders, not lesions.
    gray[:, :8], gray[:, -8:] = 0, 255

    points = lesion_point_grid(gray, modality, count=4)

    assert points.shape == (4, 2)
    for x, y in points * 160:
        assert 95 <= x <= 125
        assert 35 <= y <= 65


def test_lesion_grid_keeps_off_the_border_cells() -> None:
    points = lesion_point_grid(np.zeros((160, 160), dtype=np.uint8), Modality.ULTRASOUND, 500)

    assert len(points) == 14 * 14  # every interior cell once, no more
    assert points.min() > 1 / 16
    assert points.max() < 15 / 16


def test_automatic_mode_on_the_lesion_grid_answers(segmenter: LesionSegmenter) -> None:
    settings = AutomaticSettings(grid="lesion", lesion_points=6)

    found = segmenter.automatic(RGB, Modality.ULTRASOUND, settings)

    assert found is None or found.mask.shape == RGB.shape[:2]


def test_checkpoint_with_wrong_hash_is_refused(sam_checkpoint: Path) -> None:
    with pytest.raises(ModelFileError, match="configured"):
        LesionSegmenter.load("toy", sam_checkpoint, "0" * 64)
    # For the real types the official hash is the default expectation.
    with pytest.raises(ModelFileError, match="official vit_b"):
        LesionSegmenter.load("vit_b", sam_checkpoint)


def test_missing_unknown_or_foreign_checkpoint_is_refused(
    tmp_path: Path, sam_checkpoint: Path
) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        LesionSegmenter.load("toy", tmp_path / "nope.pth")
    with pytest.raises(ModelFileError, match="unknown"):
        LesionSegmenter.load("vit_x", sam_checkpoint)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="not a toy SAM checkpoint"):
        LesionSegmenter.load("toy", garbage)


def test_official_hashes_are_pinned() -> None:
    assert OFFICIAL_CHECKPOINTS["vit_b"].sha256.startswith("ec2df627")
    assert set(OFFICIAL_CHECKPOINTS) == {"vit_b", "vit_l", "vit_h"}


def test_prompted_mode_returns_a_mask_of_the_image_size(segmenter: LesionSegmenter) -> None:
    found = segmenter.prompted(RGB, "img-a", BoundingBox(x0=20, y0=20, x1=70, y1=60))

    assert found.mask.shape == (80, 96)
    assert found.mask.dtype == bool


def test_second_prompt_on_an_image_reuses_its_embedding(segmenter: LesionSegmenter) -> None:
    box = BoundingBox(x0=20, y0=20, x1=70, y1=60)
    first = segmenter.prompted(RGB, "img-b", box)
    hits = segmenter.cache.hits

    second = segmenter.prompted(RGB, "img-b", box, [Point(x=48, y=40, label=1)])
    again = segmenter.prompted(RGB, "img-b", box)

    assert segmenter.cache.hits == hits + 2
    assert (again.mask == first.mask).all()
    assert second.mask.shape == first.mask.shape


def test_cache_is_bounded() -> None:
    cache = EmbeddingCache(max_entries=2)
    embedding = Embedding(torch.zeros(1), (1, 1), (1, 1))
    for key in ("a", "b", "c"):
        cache.put(key, embedding)

    assert cache.get("a") is None
    assert cache.get("c") is embedding


def test_segment_response_reports_no_lesion_as_such(segmenter: LesionSegmenter) -> None:
    answer = segment_response(None, Image.new("L", (10, 10)), segmenter.ref, 0.1, 0.0)

    assert answer.lesion_found is False
    assert answer.mask is None
    assert answer.roi_png is None


def test_segment_response_makes_the_callers_box_the_roi_when_nothing_is_found_in_it(
    segmenter: LesionSegmenter,
) -> None:
    box = BoundingBox(x0=10, y0=20, x1=50, y1=40)
    answer = segment_response(
        None, Image.new("L", (100, 80)), segmenter.ref, 0.25, 0.0, given_box=box
    )

    assert answer.lesion_found is False
    assert answer.mask is None
    assert answer.mask_png is None
    assert answer.bbox == box
    assert answer.roi_png is not None
    crop = Image.open(io.BytesIO(base64.b64decode(answer.roi_png)))
    assert crop.size == (60, 30)  # 40×20 and a quarter of each side around it
