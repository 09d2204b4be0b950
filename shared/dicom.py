"""DICOM Part 10 uploads, rendered to the 8-bit picture a clinician would see, and nothing else.

pydicom reads the file; its pixel decoders (Pillow for JPEG baseline and extended, pylibjpeg
with libjpeg for JPEG lossless and JPEG-LS) decode one frame. The modality LUT (rescale), then
the VOI LUT or the window the file names, are applied, or, with neither, the frame's own range;
MONOCHROME1 is inverted so that dense tissue is bright; colour frames come out as RGB.

What is kept is that picture (as PNG) and a short allow-list of tags that identify no one
(`DicomInfo`): never the file, never a patient's name, id, birth date or any other tag.
Declared sizes are checked before any pixel is decoded, as for PNG and JPEG.
"""

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from branet_shared.errors import InvalidImage, InvalidParameter, UnsupportedMediaType
from branet_shared.images import DecodeLimits, check_size, plausible_spacing
from branet_shared.schemas import DicomInfo

DICOM_MAGIC_OFFSET = 128
PIXEL_DATA = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF
SUPPORTED_TRANSFER_SYNTAXES = {
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
}


def is_dicom(data: bytes) -> bool:
    """Part 10: a 128-byte preamble, then `DICM`."""
    return data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == b"DICM"


@dataclass(frozen=True)
class RenderedDicom:
    image: Image.Image  # 8-bit L or RGB
    info: DicomInfo


def render_dicom(data: bytes, limits: DecodeLimits, frame: int = 0) -> RenderedDicom:
    dataset = _read(data)
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax not in SUPPORTED_TRANSFER_SYNTAXES:
        raise UnsupportedMediaType(f"DICOM transfer syntax {syntax} is not supported")
    frames = _check_declared_size(dataset, limits)
    if not 0 <= frame < frames:
        raise InvalidParameter(f"frame: the file has {frames} frame(s), numbered from 0")
    try:
        pixels = pixel_array(dataset, index=frame if frames > 1 else None)
        image = _to_8bit(_displayed(pixels, dataset), dataset)
    except (InvalidImage, InvalidParameter):
        raise
    except Exception as exc:  # the decoders raise many types on damaged data: all the file's
        raise InvalidImage(
            f"the DICOM pixel data cannot be decoded ({type(exc).__name__})"
        ) from None
    return RenderedDicom(image, _info(dataset, frames, frame))


def _read(data: bytes) -> pydicom.Dataset:
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=False)
        pixel_data = dataset.get_item(PIXEL_DATA)
        value = pixel_data.value  # read now: a truncated file fails here, not later
    except (InvalidDicomError, AttributeError, KeyError):
        raise InvalidImage("the DICOM file has no image (no pixel data)") from None
    except Exception as exc:  # truncated or malformed data elements
        raise InvalidImage(
            f"the DICOM file is truncated or corrupt ({type(exc).__name__})"
        ) from None
    # pydicom reads what is there: a length that claims more than the file holds is a lie.
    declared = pixel_data.length if isinstance(pixel_data, RawDataElement) else UNDEFINED_LENGTH
    if declared not in (UNDEFINED_LENGTH, len(value or b"")):
        raise InvalidImage("the DICOM file is truncated: its pixel data is shorter than declared")
    return dataset


def _check_declared_size(dataset: pydicom.Dataset, limits: DecodeLimits) -> int:
    """The number of frames, once one frame's declared size is within the limits."""
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        samples = int(dataset.get("SamplesPerPixel", 1))
        bits = int(dataset.BitsAllocated)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise InvalidImage("the DICOM file does not say its image's size") from None
    if rows < 1 or columns < 1 or frames < 1 or samples not in (1, 3) or bits not in (8, 16):
        raise InvalidImage("the DICOM image's declared size or depth is not one of an image")
    check_size(columns, rows, rows * columns * samples * (bits // 8), limits)
    return frames


def _displayed(
    pixels: npt.NDArray[np.generic], dataset: pydicom.Dataset
) -> npt.NDArray[np.float64]:
    """Stored values as displayed: rescaled, then through the VOI LUT or window if named."""
    if pixels.ndim == 3:  # colour: already RGB (pydicom converts YBR)
        return pixels.astype(np.float64)
    shown = apply_modality_lut(pixels, dataset)
    if "VOILUTSequence" in dataset or "WindowCenter" in dataset:
        shown = apply_voi_lut(shown, dataset)
    return np.asarray(shown, dtype=np.float64)


def _to_8bit(values: npt.NDArray[np.float64], dataset: pydicom.Dataset) -> Image.Image:
    low, high = float(values.min()), float(values.max())
    scaled = np.zeros_like(values) if high <= low else (values - low) * (255.0 / (high - low))
    pixels = np.round(scaled).astype(np.uint8)
    if values.ndim == 3:
        return Image.fromarray(pixels, "RGB")
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":  # 0 is white: invert
        pixels = 255 - pixels
    return Image.fromarray(pixels, "L")


def _info(dataset: pydicom.Dataset, frames: int, frame: int) -> DicomInfo:
    """The allow-list: what helps read the image and identifies no one."""
    return DicomInfo(
        modality=_text(dataset.get("Modality")),
        manufacturer=_text(dataset.get("Manufacturer")),
        photometric_interpretation=_text(dataset.get("PhotometricInterpretation")),
        pixel_spacing_mm=list(spacing) if (spacing := _spacing(dataset)) else None,
        frames=frames,
        frame=frame,
    )


def _spacing(dataset: pydicom.Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm, where the file gives a plausible one."""
    spacing = dataset.get("PixelSpacing") or dataset.get("ImagerPixelSpacing")
    try:
        row, column = (float(value) for value in spacing)
    except (TypeError, ValueError):
        return None
    return (row, column) if plausible_spacing(row, column) else None


def _text(value: object) -> str | None:
    return str(value)[:64] if value not in (None, "") else None
