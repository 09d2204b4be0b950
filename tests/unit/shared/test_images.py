"""Upload validation: what is accepted, how it is normalised, and what is refused."""

import io
import time
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from branet_shared.errors import (
    InvalidImage,
    InvalidParameter,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from branet_shared.images import (
    DecodeLimits,
    check_jpeg_structure,
    check_prompt_fits,
    parse_box,
    parse_prompt,
    validate_image,
)
from branet_shared.schemas import BoundingBox, Point, Prompt
from tests.hostile_images import (
    jpeg_with_repeated_scans,
    png_with_unrewritable_exif,
    resource_bombs,
)
from tests.images import encode, gray_png, lesion_array, png_bomb, png_chunk

GRAY = lesion_array(40, 30)


def sixteen_bit() -> Image.Image:
    # 12-bit data in a 16-bit container, as mammograms often are.
    return Image.fromarray(GRAY.astype(np.uint16) * 16).convert("I;16")


def palette(transparent: bool) -> Image.Image:
    image = Image.fromarray(GRAY).convert("P")
    if transparent:
        image.info["transparency"] = 0
    return image


ACCEPTED: dict[str, tuple[Callable[[], bytes], str]] = {
    "png-gray8": (lambda: encode(Image.fromarray(GRAY)), "L"),
    "png-gray16": (lambda: encode(sixteen_bit()), "L"),
    "png-rgb": (lambda: encode(Image.fromarray(GRAY).convert("RGB")), "RGB"),
    "png-rgba": (lambda: encode(Image.fromarray(GRAY).convert("RGBA")), "RGB"),
    "png-gray-alpha": (lambda: encode(Image.fromarray(GRAY).convert("LA")), "L"),
    "png-palette": (lambda: encode(palette(False)), "RGB"),
    "png-palette-transparent": (lambda: encode(palette(True)), "RGB"),
    "png-bilevel": (lambda: encode(Image.fromarray(GRAY).convert("1")), "L"),
    "jpeg-gray": (lambda: encode(Image.fromarray(GRAY), "JPEG"), "L"),
    "jpeg-rgb": (lambda: encode(Image.fromarray(GRAY).convert("RGB"), "JPEG"), "RGB"),
    "jpeg-cmyk": (lambda: encode(Image.fromarray(GRAY).convert("CMYK"), "JPEG"), "RGB"),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_every_common_mode_is_accepted_and_normalised(name: str) -> None:
    make, mode = ACCEPTED[name]

    validated = validate_image(make())

    assert validated.image.mode == mode
    assert (validated.width, validated.height) == (40, 30)


def test_sixteen_bit_images_use_their_full_range() -> None:
    validated = validate_image(encode(sixteen_bit()))

    pixels = np.asarray(validated.image)
    assert pixels.min() == 0
    assert pixels.max() == 255
    # Order is kept: the dark lesion stays darker than the tissue.
    assert pixels[15, 20] < pixels[2, 2]


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(Image.fromarray(lesion_array(40, 30)), "JPEG", exif=exif.tobytes())

    validated = validate_image(data)

    assert (validated.width, validated.height) == (30, 40)


def test_the_original_bytes_and_their_hash_are_kept() -> None:
    data = gray_png()

    validated = validate_image(data)

    assert validated.data == data
    assert validated.format == "png"
    assert validated.content_type == "image/png"
    assert len(validated.sha256) == 64


def corrupt_crc(data: bytes) -> bytes:
    # The IHDR chunk's CRC sits at bytes 29..33.
    return data[:29] + bytes(b ^ 0xFF for b in data[29:33]) + data[33:]


def absurd_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 77
    return encode(Image.fromarray(GRAY), "JPEG", exif=exif.tobytes())


REFUSED = {
    "gif": (encode(Image.new("P", (4, 4)), "GIF"), UnsupportedMediaType),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", UnsupportedMediaType),
    "bmp": (encode(Image.new("L", (4, 4)), "BMP"), UnsupportedMediaType),
    "empty": (b"", InvalidImage),
    "truncated-png": (gray_png()[:200], InvalidImage),
    "png-bad-crc": (corrupt_crc(gray_png()), InvalidImage),
    "truncated-jpeg": (encode(Image.fromarray(GRAY), "JPEG")[:300], InvalidImage),
    "png-magic-only": (b"\x89PNG\r\n\x1a\n", InvalidImage),
    "png-bomb": (png_bomb(), InvalidImage),
    "zero-width": (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", b"\0\0\0\0\0\0\0\x01\x08\0\0\0\0"),
        InvalidImage,
    ),
    "too-many-bytes": (gray_png() + b"\0" * (10 * 1024 * 1024), PayloadTooLarge),
}


@pytest.mark.parametrize("name", REFUSED)
def test_bad_files_are_refused_with_a_clear_error(name: str) -> None:
    data, error = REFUSED[name]

    with pytest.raises(error) as caught:
        validate_image(data)

    assert caught.value.detail


def test_absurd_exif_orientation_is_ignored_not_fatal() -> None:
    assert validate_image(absurd_exif()).image.size == (40, 30)


@pytest.mark.parametrize("name", resource_bombs())
def test_resource_bombs_are_refused_before_decoding(name: str) -> None:
    started = time.process_time()

    with pytest.raises(InvalidImage) as caught:
        validate_image(resource_bombs()[name])

    assert time.process_time() - started < 0.5
    assert any(word in caught.value.detail for word in ("MiB", "scans", "after its end"))


def test_real_progressive_jpegs_pass_the_scan_count() -> None:
    progressive = encode(Image.fromarray(GRAY), "JPEG", progressive=True)

    check_jpeg_structure(progressive)
    check_jpeg_structure(jpeg_with_repeated_scans(32))
    assert validate_image(progressive).image.size == (40, 30)


def test_exif_that_breaks_rotation_is_decoded_as_stored() -> None:
    assert validate_image(png_with_unrewritable_exif()).image.size == (64, 48)


def test_a_16_bit_image_is_windowed_without_a_float_copy() -> None:
    wide = np.linspace(1000, 5000, 64 * 48).astype(np.uint16).reshape(48, 64)

    pixels = np.asarray(validate_image(encode(Image.fromarray(wide))).image)

    assert (pixels.min(), pixels.max()) == (0, 255)
    assert np.all(np.diff(pixels.astype(int).ravel()) >= 0)  # the order of values is kept


def test_the_decode_budget_is_configurable() -> None:
    with pytest.raises(InvalidImage, match="MiB"):
        validate_image(gray_png(width=2048, height=1024), DecodeLimits(max_decoded_bytes=2**20))


def test_pixel_limit_is_configurable() -> None:
    with pytest.raises(InvalidImage, match="pixels"):
        validate_image(gray_png(), DecodeLimits(max_pixels=1000))


def test_png_with_anything_after_its_end_is_refused() -> None:
    with pytest.raises(InvalidImage, match="after its end"):
        validate_image(gray_png() + b"%PDF-1.7")


@pytest.mark.parametrize("text", [None, "", "  "])
def test_no_box_is_none(text: str | None) -> None:
    assert parse_box(text) is None


def test_box_is_parsed() -> None:
    assert parse_box(" 1, 2 ,30,40") == BoundingBox(x0=1, y0=2, x1=30, y1=40)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "5,5,1,1", "-1,0,4,4", "1,2,3,4,5"])
def test_malformed_boxes_are_invalid_parameters(text: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_box(text)


def test_prompt_must_lie_inside_the_image() -> None:
    image = Image.new("L", (50, 40))
    check_prompt_fits(Prompt(box=BoundingBox(x0=0, y0=0, x1=50, y1=40)), image)
    check_prompt_fits(Prompt(points=[Point(x=49, y=39)]), image)
    with pytest.raises(InvalidParameter, match="outside"):
        check_prompt_fits(Prompt(box=BoundingBox(x0=0, y0=0, x1=51, y1=40)), image)
    with pytest.raises(InvalidParameter, match="outside"):
        check_prompt_fits(Prompt(points=[Point(x=50, y=0)]), image)


def test_points_are_parsed_with_foreground_default() -> None:
    prompt = parse_prompt(None, "10,20;30,40,0")

    assert prompt.points == [Point(x=10, y=20, label=1), Point(x=30, y=40, label=0)]
    assert prompt.given


@pytest.mark.parametrize("text", ["1", "1,2,2", "x,y", ";".join(["1,1"] * 17)])
def test_malformed_points_are_invalid_parameters(text: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_prompt(None, text)


def test_decoded_image_is_independent_of_the_input_buffer() -> None:
    buffer = bytearray(gray_png())
    validated = validate_image(bytes(buffer))
    buffer[:] = b"\0" * len(buffer)
    assert validated.image.getpixel((0, 0)) == Image.open(io.BytesIO(gray_png())).getpixel((0, 0))
