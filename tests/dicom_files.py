"""DICOM Part 10 files built in memory with pydicom, with a patient's name and id in them that
must never reach a log, an answer or a store."""

import io

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    generate_uid,
)

PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "PID-99817"


def _dataset(syntax: str = ExplicitVRLittleEndian) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(syntax)
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.PatientName = PATIENT_NAME
    dataset.PatientID = PATIENT_ID
    dataset.PatientBirthDate = "19700101"
    dataset.Modality = "US"
    dataset.Manufacturer = "ACME Ultrasound"
    dataset.PixelSpacing = [0.1, 0.2]  # row, column
    return dataset


def _written(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def gray_dicom(
    pixels: npt.NDArray[np.uint16] | npt.NDArray[np.uint8],
    *,
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = None,
) -> bytes:
    """Single- or multi-frame (frames × rows × columns) grayscale, uncompressed."""
    dataset = _dataset()
    frames = pixels if pixels.ndim == 3 else pixels[None]
    dataset.Rows, dataset.Columns = frames.shape[1:]
    if len(frames) > 1:
        dataset.NumberOfFrames = len(frames)
    bits = 16 if pixels.dtype == np.uint16 else 8
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = dataset.BitsStored = bits
    dataset.HighBit = bits - 1
    dataset.PixelRepresentation = 0
    if window is not None:
        dataset.WindowCenter, dataset.WindowWidth = window
    dataset.PixelData = frames.tobytes()
    return _written(dataset)


def rgb_dicom(pixels: npt.NDArray[np.uint8]) -> bytes:
    dataset = _dataset()
    dataset.Rows, dataset.Columns = pixels.shape[:2]
    dataset.SamplesPerPixel = 3
    dataset.PlanarConfiguration = 0
    dataset.PhotometricInterpretation = "RGB"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    return _written(dataset)


def jpeg_dicom(pixels: npt.NDArray[np.uint8], *, declared: tuple[int, int] | None = None) -> bytes:
    """A JPEG baseline frame, encapsulated; `declared` (rows, columns) may lie about its size."""
    dataset = _dataset(JPEGBaseline8Bit)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    dataset.Rows, dataset.Columns = declared or pixels.shape[:2]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = encapsulate([buffer.getvalue()])
    dataset["PixelData"].VR = "OB"
    dataset["PixelData"].is_undefined_length = True
    return _written(dataset)


def with_transfer_syntax(data: bytes, syntax: str) -> bytes:
    """The same file, claiming another transfer syntax (one no decoder here knows)."""
    import pydicom

    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.file_meta.TransferSyntaxUID = UID(syntax)
    return _written(dataset)


def _edited(data: bytes, **changes: object) -> bytes:
    """The same file with some elements changed, or removed (None)."""
    import pydicom

    dataset = pydicom.dcmread(io.BytesIO(data))
    for name, value in changes.items():
        if value is None:
            delattr(dataset, name)
        else:
            setattr(dataset, name, value)
    return _written(dataset)


def _fragments(syntax: str, fragments: list[bytes]) -> bytes:
    """An encapsulated 64×48 grayscale frame of `syntax` made of these fragments."""
    dataset = _dataset(syntax)
    dataset.Rows, dataset.Columns = 48, 64
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = encapsulate(fragments) if fragments else b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
    dataset["PixelData"].VR = "OB"
    dataset["PixelData"].is_undefined_length = True
    return _written(dataset)


def _nested_sequences(data: bytes, depth: int) -> bytes:
    """`depth` sequences of undefined length, one inside the other, before the Modality."""
    sequence = b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff"  # (0008,1140), explicit VR
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    ends = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    at = data.index(b"\x08\x00\x60\x00CS")
    return data[:at] + (sequence + item) * depth + ends * depth + data[at:]


def _pixel_data_length(data: bytes, length: int) -> bytes:
    """The pixel data element claiming `length` bytes, whatever follows."""
    at = data.index(b"\xe0\x7f\x10\x00")  # (7FE0,0010): tag, VR, 2 reserved, 4-byte length
    return data[: at + 8] + length.to_bytes(4, "little") + data[at + 12 :]


def hostile_dicoms() -> dict[str, bytes]:
    """Files that claim to be DICOM and must each be refused with a 4xx, storing nothing."""
    plain = gray_dicom((np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 10).astype(np.uint16))
    tiny = np.zeros((8, 8), np.uint8)
    noise = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))
    return {
        "dicom-truncated-pixel-data": plain[:-500],
        "dicom-cut-in-the-header": plain[:200],
        "dicom-magic-only": plain[:132],
        "dicom-magic-then-noise": plain[:132] + noise,
        "dicom-jpeg-declares-60000-squared": jpeg_dicom(tiny, declared=(60000, 60000)),
        "dicom-jpeg-declares-more-than-it-holds": jpeg_dicom(tiny, declared=(4000, 4000)),
        "dicom-declares-65535-squared": _edited(plain, Rows=65535, Columns=65535),
        "dicom-declares-100000-frames": _edited(plain, NumberOfFrames=100000),
        "dicom-zero-rows": _edited(plain, Rows=0),
        "dicom-12-bits-allocated": _edited(plain, BitsAllocated=12),
        "dicom-4-samples-per-pixel": _edited(plain, SamplesPerPixel=4),
        "dicom-no-pixel-data": _edited(plain, PixelData=None),
        "dicom-pixel-data-claims-4-gb": _pixel_data_length(plain, 0xFFFFFFF0),
        "dicom-unknown-transfer-syntax": with_transfer_syntax(plain, "1.2.3.4.5"),
        "dicom-deflated-transfer-syntax": with_transfer_syntax(plain, "1.2.840.10008.1.2.1.99"),
        "dicom-jpeg-2000-no-decoder": _fragments("1.2.840.10008.1.2.4.90", [noise]),
        "dicom-jpeg-noise-fragment": _fragments(JPEGBaseline8Bit, [noise]),
        "dicom-jpeg-no-fragments": _fragments(JPEGBaseline8Bit, []),
        "dicom-jpeg-lossless-noise": _fragments("1.2.840.10008.1.2.4.70", [noise]),
        "dicom-jpeg-ls-noise": _fragments("1.2.840.10008.1.2.4.80", [noise]),
        "dicom-rle-noise": _fragments("1.2.840.10008.1.2.5", [noise]),
        "dicom-10000-nested-sequences": _nested_sequences(plain, 10_000),
    }
