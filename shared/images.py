"""Upload validation: decide the type from the bytes, decode fully, and normalise.

Everything a phone or a PACS export may send is accepted and brought to one of two modes the
models understand: 8-bit grayscale (`L`) or 8-bit `RGB`. Anything else is refused with a
problem the client can act on, before any byte is stored.
"""

import hashlib
import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFile, ImageOps
from pydantic import ValidationError

from branet_shared.errors import (
    InvalidImage,
    InvalidParameter,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from branet_shared.schemas import SPACING_PATTERN, BoundingBox, Point, Prompt

MAX_IMAGE_BYTES = 10 * 1024 * 1024
# A 4096×5120 full-field mammogram is 21 MP; 50 MP leaves room and stops decompression bombs.
MAX_IMAGE_PIXELS = 50_000_000
# Pixels alone ignore depth: a 16-bit RGBA PNG of 49 MP decodes to 392 MB. The 21 MP 16-bit
# mammogram is 42 MB; a 12 MP phone photo 36 MB.
MAX_DECODED_BYTES = 64 * 1024 * 1024
# libjpeg's progressive script writes 10 scans, mozjpeg's a few more; each scan costs a pass
# over the whole image, so 500 of them are a CPU bomb in a 229 KB file.
MAX_JPEG_SCANS = 32

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

ImageFormat = Literal["png", "jpeg"]
CONTENT_TYPES: dict[ImageFormat, str] = {"png": "image/png", "jpeg": "image/jpeg"}

# A truncated file must fail, never be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class ValidatedImage:
    """An upload that passed validation: its original bytes and the normalised picture."""

    data: bytes
    format: ImageFormat
    sha256: str
    image: Image.Image  # mode "L" or "RGB", EXIF orientation applied

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


def sniff_format(data: bytes) -> ImageFormat:
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    raise UnsupportedMediaType(
        "only JPEG and PNG images are accepted (decided by the file's bytes)"
    )


@dataclass(frozen=True)
class DecodeLimits:
    """What an upload may cost to decode; the gateway's settings can lower or raise them."""

    max_bytes: int = MAX_IMAGE_BYTES
    max_pixels: int = MAX_IMAGE_PIXELS
    max_decoded_bytes: int = MAX_DECODED_BYTES
    max_jpeg_scans: int = MAX_JPEG_SCANS


def validate_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> ValidatedImage:
    check_file_size(data, limits)
    fmt = sniff_format(data)
    if fmt == "png":
        check_png_structure(data)
    else:
        check_jpeg_structure(data, limits.max_jpeg_scans)
    image = _decode(data, fmt, limits)
    try:
        normalised = to_8bit_mode(image)
    except Exception as exc:  # a mode or a value Pillow cannot convert: the file's fault
        raise InvalidImage(f"the {fmt.upper()} image cannot be converted ({exc})") from None
    return ValidatedImage(
        data=data, format=fmt, sha256=hashlib.sha256(data).hexdigest(), image=normalised
    )


def check_file_size(data: bytes, limits: DecodeLimits) -> None:
    if not data:
        raise InvalidImage("the file is empty")
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"images may be at most {limits.max_bytes} bytes")


def check_jpeg_structure(data: bytes, max_scans: int = MAX_JPEG_SCANS) -> None:
    """Walk the JPEG's segments: at most `max_scans` scans, and nothing after the end marker.

    Counted before decoding, so that a file of hundreds of scans costs nothing; a file with
    data after its end (a ZIP, a script) is a polyglot, not a picture.
    """
    offset, scans = 2, 0  # after SOI
    while True:
        if offset + 2 > len(data):
            raise InvalidImage("the JPEG file is truncated (no end marker)")
        if data[offset] != 0xFF:
            raise InvalidImage("the JPEG file is corrupt (a segment does not start with a marker)")
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            offset += 2
            continue
        if offset + 4 > len(data):
            raise InvalidImage("the JPEG file is truncated (a segment is cut off)")
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        offset += 2 + length
        if marker == 0xDA:  # SOS: the scan's entropy-coded data runs to the next marker
            scans += 1
            if scans > max_scans:
                raise InvalidImage(f"the JPEG file has more than {max_scans} scans")
            offset = _next_marker(data, offset)
    if offset + 2 != len(data):
        raise InvalidImage("the JPEG file has data after its end (EOI)")


def _next_marker(data: bytes, offset: int) -> int:
    """Where the entropy-coded data from `offset` ends: the first 0xFF that is neither a
    stuffed 0xFF00 nor a restart marker."""
    while (found := data.find(b"\xff", offset)) != -1 and found + 1 < len(data):
        following = data[found + 1]
        if following != 0x00 and not 0xD0 <= following <= 0xD7:
            return found
        offset = found + 2
    raise InvalidImage("the JPEG file is truncated (a scan is cut off)")


def check_png_structure(data: bytes) -> None:
    """Every chunk whole with a correct CRC, IHDR first, PLTE for palette images, IEND last
    and nothing after it.

    Pillow checks less (not the pixel data's CRCs, nor a missing IEND), so a damaged or
    polyglot file would otherwise pass as an image.
    """
    offset, kinds = len(PNG_MAGIC), []
    while offset < len(data):
        if offset + 12 > len(data):
            raise InvalidImage("the PNG file is truncated (a chunk header is cut off)")
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        end = offset + 12 + length
        if end > len(data):
            raise InvalidImage("the PNG file is truncated (a chunk is cut off)")
        kind = data[offset + 4 : offset + 8]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[offset + 4 : end - 4]) != crc:
            raise InvalidImage(f"the PNG file is corrupt (bad CRC in a {kind!r} chunk)")
        kinds.append(kind)
        offset = end
        if kind == b"IEND":
            break
    if not kinds or kinds[0] != b"IHDR" or kinds[-1] != b"IEND":
        raise InvalidImage("the PNG file is truncated or malformed (IHDR … IEND)")
    if offset != len(data):
        raise InvalidImage("the PNG file has data after its end (IEND)")
    if data[25] == 3 and b"PLTE" not in kinds:  # colour type 3: palette
        raise InvalidImage("the palette PNG has no palette (PLTE)")


# Channels of a PNG colour type (gray, RGB, palette, gray+alpha, RGBA).
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def decoded_bytes(data: bytes, image: Image.Image) -> int:
    """width × height × channels × bytes per sample, as the file's header declares them."""
    width, height = image.size
    if image.format == "PNG":
        bit_depth, colour_type = data[24], data[25]
        channels, sample = PNG_CHANNELS.get(colour_type, 4), 2 if bit_depth == 16 else 1
    else:
        channels, sample = len(image.getbands()), 1
    return width * height * channels * sample


def _decode(data: bytes, fmt: ImageFormat, limits: DecodeLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt.upper()])
            # On the header, before a pixel is decompressed.
            check_size(*image.size, decoded_bytes(data, image), limits)
            image.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(f"image exceeds {limits.max_pixels} pixels") from None
    except Exception as exc:  # Pillow raises many types on malformed files: all are the file's
        raise InvalidImage(f"the {fmt.upper()} file is truncated or corrupt ({exc})") from None
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # EXIF Pillow can read but not rewrite: the picture as stored
        return image


def check_size(width: int, height: int, decoded: int, limits: DecodeLimits) -> None:
    """A picture's declared size against the limits: pixels, and bytes once decoded."""
    if width < 1 or height < 1 or width * height > limits.max_pixels:
        raise InvalidImage(
            f"image is {width}×{height} pixels; at most {limits.max_pixels} pixels are accepted"
        )
    if decoded > limits.max_decoded_bytes:
        raise InvalidImage(
            f"image would decode to {decoded // 2**20} MiB; at most"
            f" {limits.max_decoded_bytes // 2**20} MiB are accepted"
        )


def to_8bit_mode(image: Image.Image) -> Image.Image:
    """Bring any decoded mode to 8-bit `L` (grayscale sources) or `RGB` (colour sources)."""
    mode = image.mode
    if mode == "L":
        return image
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _window_to_8bit(image)
    if mode == "1":
        return image.convert("L")
    if mode == "LA":
        return _flatten_alpha(image.convert("RGBA")).convert("L")
    if mode == "P":
        converted = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        return _flatten_alpha(converted) if converted.mode == "RGBA" else converted
    if mode == "RGBA" or mode == "PA":
        return _flatten_alpha(image.convert("RGBA"))
    return image.convert("RGB")  # CMYK, YCbCr, LAB, ... from JPEG


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite onto black: transparent regions read as background, as in ultrasound."""
    background = Image.new("RGBA", image.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, image).convert("RGB")


def _window_to_8bit(image: Image.Image) -> Image.Image:
    """Map the used range of a 16-bit (or wider) image linearly onto 0..255.

    Mammograms are often 12-bit data in a 16-bit container; dividing by 257 would leave them
    nearly black, so the window is the image's own min..max.
    """
    pixels = np.asarray(image)
    low, high = pixels.min(), pixels.max()
    if high <= low:
        return Image.new("L", image.size, 0)
    if pixels.dtype == np.uint16:  # a lookup table: one byte a pixel, no float copy
        table = np.round((np.arange(65536) - float(low)) * (255.0 / (float(high) - float(low))))
        return Image.fromarray(table.clip(0, 255).astype(np.uint8)[pixels])
    scaled = (pixels.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
    return Image.fromarray(np.round(scaled).astype(np.uint8))


def encode_png(image: Image.Image) -> bytes:
    """Lossless and quick: what the services send each other and store as masks and crops."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def parse_prompt(box: str | None, points: str | None) -> Prompt:
    """The optional `box` and `points` form fields of a SAM prompt."""
    return Prompt(box=parse_box(box), points=parse_points(points))


# A pixel spacing in mm outside (0, 10) is a file's or a caller's mistake, not a scanner's.
MAX_PIXEL_SPACING_MM = 10.0


def plausible_spacing(row_mm: float, column_mm: float) -> bool:
    return 0 < row_mm < MAX_PIXEL_SPACING_MM and 0 < column_mm < MAX_PIXEL_SPACING_MM


def parse_pixel_spacing(text: str | None) -> tuple[float, float] | None:
    """The optional `pixel_spacing` form field, `row,column` in mm per pixel (as DICOM's
    PixelSpacing)."""
    if text is None or not text.strip():
        return None
    if re.fullmatch(SPACING_PATTERN, text) is None:
        raise InvalidParameter("pixel_spacing must be two decimals: row_mm,column_mm")
    row, column = (float(part) for part in text.split(","))
    if not plausible_spacing(row, column):
        raise InvalidParameter("pixel_spacing: each spacing is above 0 and below 10 mm")
    return row, column


def parse_box(text: str | None) -> BoundingBox | None:
    """The optional `box` form field, `x0,y0,x1,y1` in the image's pixels."""
    if text is None or not text.strip():
        return None
    try:
        return BoundingBox.parse(text)
    except ValueError as exc:
        raise InvalidParameter(f"box: {_reason(exc)}") from None


MAX_POINTS = 16


def parse_points(text: str | None) -> list[Point]:
    """The optional `points` form field, `x,y,label;x,y,label` in the image's pixels."""
    if text is None or not text.strip():
        return []
    try:
        points = Point.parse_many(text)
    except ValueError as exc:
        raise InvalidParameter(f"points: {_reason(exc)}") from None
    if len(points) > MAX_POINTS:
        raise InvalidParameter(f"points: at most {MAX_POINTS} are accepted")
    return points


def _reason(error: ValueError) -> str:
    """The reason alone: pydantic's message would echo the input and a documentation URL."""
    if isinstance(error, ValidationError):
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
    return str(error)


class Sized(Protocol):
    """A picture, or what is known of one: its size."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


def check_prompt_fits(prompt: Prompt, image: Sized) -> None:
    if prompt.box is not None and not prompt.box.fits(image.width, image.height):
        raise InvalidParameter(f"box lies outside the {image.width}×{image.height} image")
    if any(p.x >= image.width or p.y >= image.height for p in prompt.points):
        raise InvalidParameter(f"a point lies outside the {image.width}×{image.height} image")


def bounding_box(mask: npt.NDArray[np.bool_]) -> BoundingBox:
    """The smallest box holding every true pixel of a non-empty mask (x1, y1 exclusive)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return BoundingBox(x0=int(cols[0]), y0=int(rows[0]), x1=int(cols[-1]) + 1, y1=int(rows[-1]) + 1)


def fitted_size(width: int, height: int, size: int) -> tuple[int, int]:
    """An image's width and height once its longer side is scaled to `size`."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def inscribed_ellipse(box: BoundingBox, size: tuple[int, int]) -> Image.Image:
    """The ellipse inscribed in `box` (x1, y1 exclusive), 255 on 0, over an image of `size`."""
    canvas = Image.new("L", size, 0)
    ImageDraw.Draw(canvas).ellipse((box.x0, box.y0, box.x1 - 1, box.y1 - 1), fill=255)
    return canvas


def roi_rect(image: Image.Image, box: BoundingBox, margin: float) -> tuple[int, int, int, int]:
    """The box widened by `margin` of its size on each side, clipped to the image."""
    dx, dy = round((box.x1 - box.x0) * margin), round((box.y1 - box.y0) * margin)
    return (
        max(0, box.x0 - dx),
        max(0, box.y0 - dy),
        min(image.width, box.x1 + dx),
        min(image.height, box.y1 + dy),
    )


def roi_crop(image: Image.Image, box: BoundingBox, margin: float) -> Image.Image:
    """The crop of `roi_rect`: the segmenter and the classifier crop this way, as training does."""
    return image.crop(roi_rect(image, box, margin))
