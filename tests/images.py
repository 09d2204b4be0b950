"""Small synthetic breast-like images, built in memory: tests never touch the real datasets."""

import io
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

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


def write_class_folders(root: Path, per_class: int = 6, size: tuple[int, int] = (96, 80)) -> Path:
    """A tiny dataset in the layout of ../shared/data: `<class>/<name>.png` + `_mask.png`.

    Benign lesions are small round dark ovals, malignant ones larger; each image differs.
    """
    width, height = size
    for label_index, label in enumerate(("benign", "malignant")):
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            rng = np.random.default_rng(1000 * label_index + index)
            pixels = rng.normal(140, 25, size=(height, width)).clip(0, 255)
            yy, xx = np.mgrid[0:height, 0:width]
            cx, cy = rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.65) * height
            radius = (0.1 + 0.08 * label_index) * width
            inside = ((xx - cx) / radius) ** 2 + ((yy - cy) / (radius * 0.7)) ** 2 < 1
            pixels[inside] = 30 + 40 * label_index
            Image.fromarray(pixels.astype(np.uint8)).save(root / label / f"case{index:03}.png")
            Image.fromarray(inside.astype(np.uint8) * 255).save(
                root / label / f"case{index:03}_mask.png"
            )
    return root


def decode_rle(size: Sequence[int], counts: list[int]) -> np.ndarray:
    """A COCO uncompressed RLE (column-major, starting with a 0-run) back to a bool mask."""
    flat = np.concatenate([np.full(n, i % 2, dtype=bool) for i, n in enumerate(counts)])
    return flat.reshape(tuple(size), order="F")
