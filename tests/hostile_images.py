"""A corpus of hostile image files, built in memory: truncations, corruptions, lies about
size, and polyglots. Every file here must be refused with a 4xx problem."""

import struct
import zlib
from collections.abc import Iterator

import numpy as np
from PIL import Image

from tests.dicom_files import hostile_dicoms
from tests.images import encode, lesion_array, png_bomb, png_chunk

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(offset, type, payload) of each chunk."""
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        yield offset, kind, data[offset + 8 : offset + 8 + length]
        offset += 12 + length


def rebuild(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return PNG_SIGNATURE + b"".join(png_chunk(kind, payload) for kind, payload in chunks)


def _bases() -> dict[str, bytes]:
    gray = lesion_array(64, 48)
    return {
        "gray8": encode(Image.fromarray(gray)),
        "gray16": encode(Image.fromarray(gray.astype(np.uint16) * 256).convert("I;16")),
        "rgba": encode(Image.fromarray(gray).convert("RGBA")),
        "palette": encode(Image.fromarray(gray).convert("P")),
    }


def hostile_files() -> dict[str, bytes]:
    corpus: dict[str, bytes] = {}
    for name, data in _bases().items():
        chunks = [(kind, payload) for _, kind, payload in png_chunks(data)]
        for cut in (8, 16, 33, len(data) // 2, len(data) - 13, len(data) - 1):
            corpus[f"{name}-truncated-at-{cut}"] = data[:cut]
        for index, (offset, kind, _) in enumerate(png_chunks(data)):
            crc_at = offset + 8 + len(chunks[index][1])
            corrupt = data[:crc_at] + bytes(b ^ 0xA5 for b in data[crc_at : crc_at + 4])
            corpus[f"{name}-bad-crc-{kind.decode()}"] = corrupt + data[crc_at + 4 :]
        garbage = [(k, zlib.compress(b"\xff" * 7) if k == b"IDAT" else p) for k, p in chunks]
        corpus[f"{name}-idat-too-short"] = rebuild(garbage)
        corpus[f"{name}-idat-not-zlib"] = rebuild(
            [(k, b"not zlib at all" if k == b"IDAT" else p) for k, p in chunks]
        )
        corpus[f"{name}-no-idat"] = rebuild([(k, p) for k, p in chunks if k != b"IDAT"])
    palette = [(k, p) for _, k, p in png_chunks(_bases()["palette"])]
    corpus["palette-without-plte"] = rebuild([(k, p) for k, p in palette if k != b"PLTE"])
    header = struct.pack(">IIBBBBB", 64, 48, 16, 3, 0, 0, 0)  # 16-bit palette: not allowed
    corpus["palette-16-bit-header"] = rebuild([(b"IHDR", header), *palette[1:]])
    corpus["png-declares-100000-squared"] = rebuild(
        [(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)), (b"IEND", b"")]
    )
    corpus["png-bomb-20000-squared"] = png_bomb()
    corpus["png-zero-height"] = rebuild(
        [(b"IHDR", struct.pack(">IIBBBBB", 64, 0, 8, 0, 0, 0, 0)), (b"IEND", b"")]
    )
    jpeg = encode(Image.fromarray(lesion_array(64, 48)), "JPEG", quality=90)
    for cut in (3, 20, len(jpeg) // 3, len(jpeg) - 200):
        corpus[f"jpeg-truncated-at-{cut}"] = jpeg[:cut]
    sof = jpeg.index(b"\xff\xc0")
    corpus["jpeg-declares-65500-squared"] = (
        jpeg[: sof + 5] + struct.pack(">HH", 65500, 65500) + jpeg[sof + 9 :]
    )
    corpus["jpeg-zero-width"] = jpeg[: sof + 5] + struct.pack(">HH", 48, 0) + jpeg[sof + 9 :]
    dqt = jpeg.index(b"\xff\xdb")
    corpus["jpeg-without-quantisation-table"] = jpeg[:dqt] + jpeg[dqt + 2 + 67 :]
    corpus["jpeg-magic-then-garbage"] = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
    corpus["png-magic-then-garbage"] = PNG_SIGNATURE + bytes(range(256)) * 4
    corpus["pdf-then-png"] = b"%PDF-1.7\n" + _bases()["gray8"]
    corpus["png-then-pdf"] = _bases()["gray8"] + b"%PDF-1.7\n%%EOF"
    corpus["html-with-png-inside"] = b"<html><body>" + _bases()["gray8"] + b"</body></html>"
    corpus["gif"] = encode(Image.new("P", (8, 8)), "GIF")
    corpus["zip"] = b"PK\x03\x04" + b"\0" * 64
    corpus["svg"] = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    corpus["empty"] = b""
    corpus |= resource_bombs()
    corpus |= hostile_dicoms()  # judged by content too, whatever the name says
    return corpus


def resource_bombs() -> dict[str, bytes]:
    """Small files that would cost gigabytes or minutes to decode (issue 26's, regenerated)."""
    return {
        # 16-bit RGBA, interlaced, 7000×7000: 392 MB decoded, under the 50 MP pixel cap.
        "png-16-bit-rgba-7000-squared": _png_header_only(7000, 7000, bit_depth=16, colour=6),
        "png-16-bit-gray-7000-squared": _png_header_only(7000, 7000, bit_depth=16, colour=0),
        "jpeg-progressive-500-scans": jpeg_with_repeated_scans(500),
        "jpeg-then-zip": encode(Image.fromarray(lesion_array(64, 48)), "JPEG")
        + b"PK\x03\x04"
        + bytes(5000),
    }


def _png_header_only(width: int, height: int, *, bit_depth: int, colour: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 1)
    return rebuild([(b"IHDR", header), (b"IDAT", zlib.compress(bytes(1024))), (b"IEND", b"")])


def jpeg_with_repeated_scans(scans: int) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has `scans` of them."""
    jpeg = encode(Image.fromarray(lesion_array(64, 48)), "JPEG", progressive=True)
    last_scan = jpeg.rindex(b"\xff\xda")
    scan = jpeg[last_scan:-2]  # SOS segment and its entropy-coded data, up to EOI
    have = jpeg.count(b"\xff\xda")
    return jpeg[:-2] + scan * (scans - have) + b"\xff\xd9"


def tolerated_files() -> dict[str, bytes]:
    """Odd but decodable images: a user's real picture must not be refused for these."""
    gray = Image.fromarray(lesion_array(64, 48))
    exif = Image.Exif()
    exif[0x0112] = 65535  # an orientation no camera writes: ignored
    return {
        "jpeg-absurd-exif-orientation": encode(gray, "JPEG", exif=exif.tobytes()),
        "png-16-bit-full-range": encode(
            Image.fromarray((np.arange(64 * 48, dtype=np.uint16) * 21).reshape(48, 64)).convert(
                "I;16"
            )
        ),
        "png-palette-with-transparency": _transparent_palette(gray),
        "png-exif-rotation-pillow-cannot-rewrite": png_with_unrewritable_exif(),
    }


def png_with_unrewritable_exif() -> bytes:
    """A 64×48 PNG whose eXIf says Orientation 6 beside an UNDEFINED-typed ImageWidth of 3
    bytes: Pillow reads it, but its `exif_transpose` raises writing it back (struct.error)."""
    entries = [
        (0x0112, 3, 1, struct.pack("<HH", 6, 0)),  # Orientation: rotate 90° clockwise
        (0x0100, 7, 3, b"\x01\x00\x00\x00"),  # ImageWidth, UNDEFINED × 3: odd
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries
    )
    exif = b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"
    png = encode(Image.fromarray(lesion_array(64, 48)))
    header_end = len(PNG_SIGNATURE) + 25  # the IHDR chunk
    return png[:header_end] + png_chunk(b"eXIf", exif) + png[header_end:]


def _transparent_palette(gray: Image.Image) -> bytes:
    palette = gray.convert("P")
    palette.info["transparency"] = 0
    return encode(palette)
