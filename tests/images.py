"""Small synthetic breast-like images, built in memory: tests never touch the real datasets."""

import io
import struct
import zlib

import numpy as np
from PIL import Image


def lesion_array(width: int = 96, height: int = 80, seed: int = 0) -> np.ndarray:
    """Speckled grey tissue with a dark oval 'lesion' in the middle, like an ultrasound."""
    rng = np.random.default_rng(seed)
    tissue = rng.normal(140, 25, size=(height, width)).clip(0, 255)
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((xx - width / 2) / (width / 5)) ** 2 + ((yy - height / 2) / (height / 6)) ** 2 < 1
    tissue[inside] = rng.normal(35, 8, size=int(inside.sum())).clip(0, 255)
    return tissue.astype(np.uint8)


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gray_png(width: int = 96, height: int = 80, seed: int = 0) -> bytes:
    return encode(Image.fromarray(lesion_array(width, height, seed)))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG that declares width × height 1-bit pixels: tiny on disk, huge decoded."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )
