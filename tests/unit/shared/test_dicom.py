"""DICOM uploads: rendered as a reader would see them, and refused when hostile."""

import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from branet_shared.dicom import is_dicom, render_dicom
from branet_shared.errors import BraNetError, InvalidParameter
from branet_shared.images import DecodeLimits
from tests.dicom_files import (
    gray_dicom,
    hostile_dicoms,
    jpeg_dicom,
    rgb_dicom,
    with_transfer_syntax,
)
from tests.images import gray_png

LIMITS = DecodeLimits()
RAMP = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 10).astype(np.uint16)


def pixels_of(data: bytes, **options: int) -> np.ndarray:
    return np.asarray(render_dicom(data, LIMITS, **options).image)


def test_only_part_10_files_are_dicom() -> None:
    assert is_dicom(gray_dicom(RAMP))
    assert not is_dicom(gray_png())


def test_a_16_bit_frame_is_rendered_through_its_window() -> None:
    rendered = render_dicom(gray_dicom(RAMP, window=(15000, 10000)), LIMITS)

    pixels = np.asarray(rendered.image)
    assert rendered.image.mode == "L"
    assert pixels.shape == (48, 64)
    assert (pixels.min(), pixels.max()) == (0, 255)
    # Values below the window are black, above it white: the window, not the full range.
    assert (pixels == 0).mean() > 0.2
    assert (pixels == 255).mean() > 0.2


def test_the_kept_tags_identify_no_one() -> None:
    info = render_dicom(gray_dicom(RAMP), LIMITS).info

    assert info.model_dump() == {
        "modality": "US",
        "manufacturer": "ACME Ultrasound",
        "photometric_interpretation": "MONOCHROME2",
        "pixel_spacing_mm": [0.1, 0.2],
        "frames": 1,
        "frame": 0,
    }


def test_monochrome1_is_inverted() -> None:
    normal = pixels_of(gray_dicom(RAMP))
    inverted = pixels_of(gray_dicom(RAMP, photometric="MONOCHROME1"))

    assert np.array_equal(inverted, 255 - normal)


def test_colour_and_jpeg_frames() -> None:
    colour = np.zeros((48, 64, 3), np.uint8)
    colour[..., 0] = 200

    ramp = np.tile((np.arange(64) * 4).astype(np.uint8), (48, 1))

    assert pixels_of(rgb_dicom(colour)).shape == (48, 64, 3)
    decoded = pixels_of(jpeg_dicom(ramp))  # JPEG baseline, through Pillow's decoder
    assert decoded[:, -1].mean() - decoded[:, 0].mean() > 200


def test_a_chosen_frame_of_a_multi_frame_file() -> None:
    data = gray_dicom(np.stack([RAMP, RAMP[::-1]]))

    first, second = pixels_of(data, frame=0), pixels_of(data, frame=1)

    assert np.array_equal(first, second[::-1])
    with pytest.raises(InvalidParameter, match="2 frame"):
        render_dicom(data, LIMITS, frame=2)


@pytest.mark.parametrize(("name", "data"), hostile_dicoms().items())
def test_hostile_files_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(BraNetError) as caught:
        render_dicom(data, LIMITS)

    assert 400 <= caught.value.status < 500, name
    assert "DOE" not in caught.value.detail


def test_there_are_twenty_hostile_files_or_more() -> None:
    assert len(hostile_dicoms()) >= 20


def test_a_plain_file_claims_an_uncompressed_syntax() -> None:
    assert render_dicom(with_transfer_syntax(gray_dicom(RAMP), ExplicitVRLittleEndian), LIMITS)
