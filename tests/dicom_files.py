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
