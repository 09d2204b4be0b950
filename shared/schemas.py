"""Pydantic models for everything that crosses a boundary: the public API and the calls
between the gateway and the model services."""

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict


class Modality(StrEnum):
    ULTRASOUND = "ultrasound"
    MAMMOGRAPHY = "mammography"


class Label(StrEnum):
    BENIGN = "benign"
    MALIGNANT = "malignant"


class Schema(BaseModel):
    # Answers always carry every field: the OpenAPI document says so (generated clients then
    # need no checks for fields that are always there).
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
# The form fields' formats, as the OpenAPI document states them: ASCII digits only.
_INTEGER, _LABEL = r" *[0-9]+ *", r" *[01] *"
BOX_PATTERN = f"^{_INTEGER},{_INTEGER},{_INTEGER},{_INTEGER}$"
_POINT = f"{_INTEGER},{_INTEGER}(,{_LABEL})?"
POINTS_PATTERN = f"^{_POINT}(;{_POINT})*$"
SPACING_PATTERN = r"^ *[0-9]+(\.[0-9]+)? *, *[0-9]+(\.[0-9]+)? *$"


class Problem(Schema):
    """RFC 9457 problem details, with BraNet's stable `code`."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:branet:problem:invalid_image",
                    "title": "Invalid image",
                    "status": 422,
                    "detail": "the image is truncated or corrupt",
                    "code": "invalid_image",
                    "instance": "/v1/analyses",
                    "request_id": "3f2c5b0e9a7d4c1b8e6f0a2d4c6e8b10",
                }
            ]
        },
    )

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    request_id: str | None = None


class Caveat(Schema):
    """Why a result deserves less trust than its confidence suggests; `code` is stable."""

    code: Literal["model_at_chance", "no_lesion_crop", "segmenter_unavailable"] = Field(
        description="model_at_chance: the model measured no better than chance;"
        " no_lesion_crop: the image was classified as uploaded, not a lesion crop;"
        " segmenter_unavailable: the lesion was classified on the caller's box as drawn"
    )
    detail: str


class Probabilities(Schema):
    benign: Probability
    malignant: Probability

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        if abs(self.benign + self.malignant - 1.0) > 1e-4:
            raise ValueError("probabilities must sum to 1")
        return self


class BoundingBox(Schema):
    """Pixel box in the uploaded image's coordinates; x1 and y1 are exclusive."""

    x0: int = Field(ge=0)
    y0: int = Field(ge=0)
    x1: int = Field(gt=0)
    y1: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError("a box needs x0 < x1 and y0 < y1")
        return self

    @classmethod
    def parse(cls, text: str) -> "BoundingBox":
        """Parse the form field format `x0,y0,x1,y1`."""
        if re.fullmatch(BOX_PATTERN, text) is None:
            raise ValueError("box must be four integers: x0,y0,x1,y1")
        x0, y0, x1, y1 = (int(p) for p in text.split(","))
        return cls(x0=x0, y0=y0, x1=x1, y1=y1)

    def fits(self, width: int, height: int) -> bool:
        return self.x1 <= width and self.y1 <= height


class Point(Schema):
    """A point prompt in image pixels: label 1 marks the lesion, 0 the background."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    label: Literal[0, 1] = 1

    @classmethod
    def parse_many(cls, text: str) -> list["Point"]:
        """Parse the form field format `x,y,label;x,y,label` (label defaults to 1)."""
        points = []
        for item in text.split(";"):
            parts = [p.strip() for p in item.split(",")]
            if len(parts) not in (2, 3):
                raise ValueError("points must be `x,y,label` separated by `;`")
            if not all(re.fullmatch("[0-9]+", p) for p in parts):
                raise ValueError("point coordinates and labels must be integers")
            x, y, *label = (int(p) for p in parts)
            if label and label[0] not in (0, 1):
                raise ValueError("a point's label is 1 (lesion) or 0 (background)")
            points.append(cls(x=x, y=y, label=label[0] if label else 1))
        return points


class Prompt(Schema):
    """What the caller marked on the image for SAM: a box around the lesion and/or points."""

    box: BoundingBox | None = None
    points: list[Point] = Field(default_factory=list)

    @property
    def given(self) -> bool:
        return self.box is not None or bool(self.points)


class ModelRef(Schema):
    name: str
    version: str
    sha256: str | None = Field(default=None, description="of the weights file")


class ModelInfo(Schema):
    """A model in service, as its card describes it."""

    name: str
    version: str
    task: Literal["classification", "segmentation"]
    modality: Modality | None = None
    architecture: str
    sha256: str
    metrics: dict[str, float] = Field(default_factory=dict)
    description: str = ""
    runtime: str = Field("", description="how it runs here, e.g. 'int8, ONNX Runtime'")
    decision_threshold: float | None = Field(
        None, description="a classifier's: the label is malignant from this P(malignant)"
    )
    caveats: list[Caveat] = Field(default_factory=list, description="on every answer it gives")


class Unavailable(Schema):
    """A model that is configured but not loaded, and why."""

    service: str
    name: str
    reason: str


class ModelsResponse(Schema):
    models: list[ModelInfo]
    unavailable: list[Unavailable] = Field(default_factory=list)


# --- between the gateway and the model services -------------------------------------------


DECISION_THRESHOLD = Field(
    0.5,
    description="the label is malignant when P(malignant) is at least this: the model's"
    " operating point, which weighs both classes equally; below 0.5 where malignant lesions"
    " are the rarer class in the training data",
)
CONFIDENCE = Field(description="the probability of the label")


class ClassifyResponse(Schema):
    label: Label
    probabilities: Probabilities
    confidence: Probability = CONFIDENCE
    decision_threshold: Probability = DECISION_THRESHOLD
    model: ModelRef
    inference_ms: float
    heatmap_png: str | None = Field(
        default=None, description="base64 PNG: Grad-CAM over the classified image, if asked"
    )
    caveats: list[Caveat] = Field(default_factory=list, description="the model's own")


class Mask(Schema):
    """A binary mask in COCO run-length encoding (column-major, starting with a 0-run)."""

    size: tuple[int, int] = Field(description="[height, width]")
    counts: list[int]


class SegmentResponse(Schema):
    lesion_found: bool
    bbox: BoundingBox | None = Field(
        default=None,
        description="the mask's box; with no lesion found inside a caller's box, that box",
    )
    area: int | None = None
    score: float | None = Field(default=None, description="SAM's predicted IoU")
    mask: Mask | None = None
    mask_png: str | None = Field(default=None, description="base64 PNG, 0/255")
    roi_png: str | None = Field(default=None, description="base64 PNG of the ROI crop (of bbox)")
    model: ModelRef
    inference_ms: float


class CheckResult(Schema):
    ok: bool
    detail: str = ""


class Readiness(Schema):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]


class Liveness(Schema):
    status: Literal["alive"] = "alive"
    service: str
    version: str


# --- the public Analysis ----------------------------------------------------------------------


class StoredBlob(Schema):
    """A blob of an analysis; its bytes are served at `url`."""

    url: str
    content_type: str
    size: int
    sha256: str


class StoredImage(StoredBlob):
    width: int
    height: int
    format: Literal["png", "jpeg"]


class LesionSize(Schema):
    """The lesion's extent: in pixels always, in millimetres where a pixel spacing is known."""

    measured_on: Literal["mask", "box"] = Field(
        description="mask: the segmenter's outline; box: the caller's box (its inscribed ellipse"
        " for the area)"
    )
    width_px: int
    height_px: int
    area_px: float
    width_mm: float | None = None
    height_mm: float | None = None
    area_mm2: float | None = None


class DicomInfo(Schema):
    """What a DICOM upload said that identifies no one; the file itself is not kept."""

    modality: str | None = None
    manufacturer: str | None = None
    photometric_interpretation: str | None = None
    # A list of two, not a tuple: generated clients type arrays more freely than tuples.
    pixel_spacing_mm: Annotated[list[float], Field(min_length=2, max_length=2)] | None = Field(
        default=None, description="[row, column] spacing: PixelSpacing or ImagerPixelSpacing"
    )
    frames: int = 1
    frame: int = Field(0, description="the frame analysed, from 0")


class RegionOfInterest(Schema):
    lesion_found: bool
    prompt: Prompt | None = Field(default=None, description="what the caller marked, if anything")
    bbox: BoundingBox | None = Field(
        default=None,
        description="the mask's box; with no lesion found inside a caller's box, that box",
    )
    area: int | None = None
    score: float | None = Field(default=None, description="SAM's predicted IoU")
    mask: StoredBlob | None = None
    crop: StoredBlob | None = Field(default=None, description="the classified crop of bbox")
    size: LesionSize | None = None


class StageModels(Schema):
    classifier: ModelRef
    segmenter: ModelRef | None = None


class Timings(Schema):
    """Milliseconds spent per stage of the request."""

    validate_ms: float
    segment_ms: float | None = None
    classify_ms: float
    store_ms: float
    total_ms: float


_BLOB = "/v1/analyses/5f0c6c1e0b6e4a57a1d8a5d8c1e2f3a4"
ANALYSIS_EXAMPLE: JsonDict = {
    "id": "5f0c6c1e0b6e4a57a1d8a5d8c1e2f3a4",
    "owner": "local",
    "modality": "ultrasound",
    "status": "completed",
    "label": "benign",
    "probabilities": {"benign": 0.91, "malignant": 0.09},
    "confidence": 0.91,
    "decision_threshold": 0.3587,
    "roi": {
        "lesion_found": True,
        "prompt": None,
        "bbox": {"x0": 120, "y0": 88, "x1": 310, "y1": 240},
        "area": 21480,
        "score": 0.93,
        "mask": {
            "url": f"{_BLOB}/mask",
            "content_type": "image/png",
            "size": 1432,
            "sha256": "9b1c" + "0" * 60,
        },
        "crop": {
            "url": f"{_BLOB}/roi",
            "content_type": "image/png",
            "size": 48210,
            "sha256": "3e7a" + "0" * 60,
        },
        "size": {
            "measured_on": "mask",
            "width_px": 190,
            "height_px": 152,
            "area_px": 21480,
            "width_mm": 13.3,
            "height_mm": 10.64,
            "area_mm2": 105.25,
        },
    },
    "heatmap": None,
    "models": {
        "classifier": {
            "name": "branet-resnet18-ultrasound",
            "version": "1.2.0",
            "sha256": "40ed" + "0" * 60,
        },
        "segmenter": {
            "name": "branet-lesion-segmenter",
            "version": "0.1.0",
            "sha256": "a1b2" + "0" * 60,
        },
    },
    "caveats": [],
    "image": {
        "url": f"{_BLOB}/image",
        "content_type": "image/png",
        "size": 183212,
        "sha256": "c0ff" + "0" * 60,
        "width": 562,
        "height": 471,
        "format": "png",
    },
    "timings": {
        "validate_ms": 9.1,
        "segment_ms": 85.2,
        "classify_ms": 27.4,
        "store_ms": 2.3,
        "total_ms": 130.0,
    },
    "dicom": {
        "modality": "US",
        "manufacturer": "ACME Ultrasound",
        "photometric_interpretation": "RGB",
        "pixel_spacing_mm": [0.07, 0.07],
        "frames": 1,
        "frame": 0,
    },
    "created_at": "2026-11-26T15:30:00.123456Z",
}


class Analysis(Schema):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra={"examples": [ANALYSIS_EXAMPLE]},
    )

    id: str
    owner: str
    modality: Modality
    status: Literal["completed"] = "completed"
    label: Label
    probabilities: Probabilities
    confidence: Probability = CONFIDENCE
    decision_threshold: Probability = DECISION_THRESHOLD
    roi: RegionOfInterest | None
    heatmap: StoredBlob | None = Field(
        default=None, description="Grad-CAM of the decision over the classified image"
    )
    models: StageModels
    caveats: list[Caveat] = Field(
        default_factory=list, description="why to trust this result less than it looks; [] if none"
    )
    image: StoredImage
    dicom: DicomInfo | None = Field(
        default=None, description="for a DICOM upload: the image is its rendered frame (PNG)"
    )
    timings: Timings
    created_at: datetime

    def blob(self, kind: str) -> StoredBlob | None:
        """The stored blob of `kind` (image, mask, roi, heatmap), if this analysis has one."""
        if kind == "image":
            return self.image
        if kind == "heatmap":
            return self.heatmap
        if self.roi is None:
            return None
        return {"mask": self.roi.mask, "roi": self.roi.crop}.get(kind)


class AnalysisPage(Schema):
    items: list[Analysis]
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; null on the last page"
    )
