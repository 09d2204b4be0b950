"""Upload validation: decide the type from the bytes, decode fully, and normalise.

Everything a phone or a PACS export may send is accepted and brought to one of two modes the
models understand: 8-bit grayscale (`L`) or 8-bit `RGB`. Anything else is refused with a
problem the client can act on, before any byte is stored.
"""

import hashlib
import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFile, ImageOps, UnidentifiedImageError

from branet_shared.errors import (
    InvalidImage,
    InvalidParameter,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from branet_shared.schemas import BoundingBox, Point, Prompt

MAX_IMAGE_BYTES = 10 * 1024 * 1024
# A 4096×5120 full-field mammogram is 21 MP; 50 MP leaves room and stops decompression bombs.
MAX_IMAGE_PIXELS = 50_000_000

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


def validate_image(
    data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> ValidatedImage:
    if not data:
        raise InvalidImage("the file is empty")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"images may be at most {max_bytes} bytes")
    fmt = sniff_format(data)
    if fmt == "png":
        check_png_structure(data)
    image = _decode(data, fmt, max_pixels)
    return ValidatedImage(
        data=data, format=fmt, sha256=hashlib.sha256(data).hexdigest(), image=to_8bit_mode(image)
    )


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


def _decode(data: bytes, fmt: ImageFormat, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt.upper()])
            width, height = image.size
            # Checked on the header, before a single pixel is decompressed.
            if width < 1 or height < 1 or width * height > max_pixels:
                raise InvalidImage(
                    f"image is {width}×{height} pixels; at most {max_pixels} pixels are accepted"
                )
            image.load()
            return ImageOps.exif_transpose(image)
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(f"image exceeds {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise InvalidImage(f"the {fmt.upper()} file is truncated or corrupt ({exc})") from None


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
    pixels = np.asarray(image, dtype=np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        scaled = np.zeros_like(pixels, dtype=np.uint8)
    else:
        scaled = np.round((pixels - low) * (255.0 / (high - low))).astype(np.uint8)
    return Image.fromarray(scaled)


def encode_png(image: Image.Image) -> bytes:
    """Lossless and quick: what the services send each other and store as masks and crops."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def parse_prompt(box: str | None, points: str | None) -> Prompt:
    """The optional `box` and `points` form fields of a SAM prompt."""
    return Prompt(box=parse_box(box), points=parse_points(points))


def parse_box(text: str | None) -> BoundingBox | None:
    """The optional `box` form field, `x0,y0,x1,y1` in the image's pixels."""
    if text is None or not text.strip():
        return None
    try:
        return BoundingBox.parse(text)
    except ValueError as exc:
        raise InvalidParameter(f"box: {exc}") from None


MAX_POINTS = 16


def parse_points(text: str | None) -> list[Point]:
    """The optional `points` form field, `x,y,label;x,y,label` in the image's pixels."""
    if text is None or not text.strip():
        return []
    try:
        points = Point.parse_many(text)
    except ValueError as exc:
        raise InvalidParameter(f"points: {exc}") from None
    if len(points) > MAX_POINTS:
        raise InvalidParameter(f"points: at most {MAX_POINTS} are accepted")
    return points


def check_prompt_fits(prompt: Prompt, image: Image.Image) -> None:
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
