"""Analyses: validate an upload, run the model services, store the result, serve the history.

Write order keeps every analysis whole. The models run before anything is written; then the
blobs, then the record. A failure at any step removes what this request wrote, so there is never
a record without its image, nor blobs without a record. A DELETE removes the record first (the
analysis is gone for the caller at once), then every blob under the analysis's prefix.
"""

import base64
import binascii
import hashlib
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import anyio.to_thread

from branet_gateway.metrics import GatewayMetrics
from branet_gateway.model_clients import ClassifierClient, SegmenterClient
from branet_gateway.storage import (
    BlobStore,
    PageCursor,
    ResultPage,
    ResultStore,
    analysis_prefix,
    blob_key,
)
from branet_gateway.storage.base import BlobKind, IdempotencyKey, KeyAlreadyUsed
from branet_gateway.validation import Upload, Validator
from branet_shared.errors import IdempotencyKeyReused, ModelUnavailable, NotFound
from branet_shared.images import check_prompt_fits
from branet_shared.metrics import Stages, Stopwatch
from branet_shared.schemas import (
    Analysis,
    BoundingBox,
    Caveat,
    ClassifyResponse,
    LesionSize,
    Modality,
    Prompt,
    RegionOfInterest,
    SegmentResponse,
    StageModels,
    StoredBlob,
    StoredImage,
    Timings,
)

log = logging.getLogger(__name__)
PNG = "image/png"


@dataclass(frozen=True)
class PendingBlob:
    kind: BlobKind
    data: bytes
    content_type: str
    sha256: str

    @classmethod
    def of(cls, kind: BlobKind, data: bytes, content_type: str) -> "PendingBlob":
        return cls(kind, data, content_type, hashlib.sha256(data).hexdigest())

    def stored_blob(self, analysis_id: str) -> StoredBlob:
        return StoredBlob(
            url=f"/v1/analyses/{analysis_id}/{self.kind}",
            content_type=self.content_type,
            size=len(self.data),
            sha256=self.sha256,
        )


@dataclass(frozen=True)
class ModelOutcome:
    classification: ClassifyResponse
    segmentation: SegmentResponse | None
    blobs: list[PendingBlob]  # the image; mask and crop if a lesion was found; heatmap if asked
    segment_ms: float | None
    classify_ms: float
    # Why the caller's box was classified as drawn: the segmenter's error, if it failed.
    unrefined: str | None = None


@dataclass(frozen=True)
class Created:
    """A created analysis; `replayed` when an earlier request with its idempotency key made it."""

    analysis: Analysis
    replayed: bool = False


@dataclass(frozen=True)
class AnalysisRequest:
    """What the caller asked for, beside the image. A prompt implies ROI extraction;
    `extract_roi` alone asks for automatic mode."""

    modality: Modality
    extract_roi: bool = False
    prompt: Prompt = field(default_factory=Prompt)
    explain: bool = False
    frame: int = 0  # of a multi-frame DICOM file
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column), the caller's

    @property
    def segment(self) -> bool:
        return self.extract_roi or self.prompt.given

    def fingerprint(self, data: bytes) -> str:
        """What makes two creations the same request: the image's bytes and every field."""
        fields = (
            f"{self.modality.value}|{self.extract_roi}|{self.prompt.model_dump_json()}|"
            f"{self.explain}|{self.frame}|{self.pixel_spacing_mm}|"
        )
        return hashlib.sha256(fields.encode() + hashlib.sha256(data).digest()).hexdigest()


@dataclass(frozen=True)
class BlobStream:
    """A stored blob: what its record says of it, and its bytes, read only when iterated."""

    content_type: str
    size: int
    sha256: str
    chunks: AsyncIterator[bytes]


def _decode_png(field: str | None, service: str, what: str) -> bytes:
    if field is None:
        raise ModelUnavailable(f"the {service} answered without its {what}")
    try:
        return base64.b64decode(field, validate=True)
    except binascii.Error:
        raise ModelUnavailable(f"the {service} answered a malformed {what}") from None


class AnalysisService:
    def __init__(
        self,
        blobs: BlobStore,
        results: ResultStore,
        classifier: ClassifierClient,
        segmenter: SegmenterClient,
        *,
        metrics: GatewayMetrics,
        stages: Stages,
        validator: Validator,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`stages` times validate, segment, classify and store into series and spans."""
        self.blobs = blobs
        self.results = results
        self.classifier = classifier
        self.segmenter = segmenter
        self.metrics = metrics
        self.stages = stages
        self.validator = validator
        self.clock = clock

    async def create(
        self,
        owner: str,
        data: bytes,
        request: AnalysisRequest,
        idempotency_key: str | None = None,
    ) -> Created:
        """The analysis of `data`; with an idempotency key used before with the same request,
        the analysis it made."""
        key = None
        if idempotency_key is not None:
            key = IdempotencyKey(idempotency_key, request.fingerprint(data))
            if (earlier := await self._replay(owner, key)) is not None:
                return Created(earlier, replayed=True)
        total = Stopwatch()
        with self.stages.timed("validate") as validation:
            upload = await self.validator.validate(data, request.frame)
            check_prompt_fits(request.prompt, upload)
        outcome = await self._run_models(upload, request)
        try:
            analysis = await self._store(owner, upload, request, outcome, validation, total, key)
        except KeyAlreadyUsed:  # a concurrent retry won; this one's blobs are gone already
            assert key is not None
            if (earlier := await self._replay(owner, key)) is None:
                raise
            return Created(earlier, replayed=True)
        log.info(
            "analysis %s: %s, %s, %.0f ms",
            analysis.id,
            request.modality.value,
            analysis.label.value,
            analysis.timings.total_ms,
        )
        return Created(analysis)

    async def _replay(self, owner: str, key: IdempotencyKey) -> Analysis | None:
        with self.metrics.store_call("result", "keyed"):
            keyed = await self.results.keyed(owner, key.key)
        if keyed is None:
            return None
        if keyed.fingerprint != key.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with another request; use a new key"
            )
        try:
            return await self.get(owner, keyed.analysis_id)
        except NotFound:
            raise IdempotencyKeyReused(
                "the analysis this Idempotency-Key made was deleted; use a new key"
            ) from None

    async def _run_models(
        self,
        upload: Upload,
        request: AnalysisRequest,
    ) -> ModelOutcome:
        """Segment (if asked), then classify: around the lesion's box if one was found (or, if
        SAM found nothing in it or is unavailable, the caller's box), else the image as
        uploaded."""
        # Validation hashed the upload already.
        blobs = [PendingBlob("image", upload.data, upload.content_type, upload.sha256)]
        modality, prompt = request.modality, request.prompt
        segmentation, segment_ms, unrefined = None, None, None
        if request.segment:
            with self.stages.timed("segment") as segmenting:
                try:
                    segmentation = await self.segmenter.segment(upload.data, modality, prompt)
                except ModelUnavailable as exc:
                    if prompt.box is None:  # nothing else says where the lesion is
                        raise
                    # The caller's box is what the classifier needs; SAM only tightens it.
                    log.warning("segmenter unavailable, classifying the caller's box: %s", exc)
                    unrefined = exc.detail
            segment_ms = segmenting.ms
        if segmentation is not None:
            if segmentation.lesion_found:
                mask = _decode_png(segmentation.mask_png, "segmenter", "mask")
                blobs.append(PendingBlob.of("mask", mask, PNG))
            if segmentation.lesion_found or segmentation.roi_png is not None:
                # Without a lesion found the crop is of the caller's box, if one was given.
                crop = _decode_png(segmentation.roi_png, "segmenter", "ROI crop")
                blobs.append(PendingBlob.of("roi", crop, PNG))
        # The classifier crops around the box itself, with its model's margin, as in training.
        # Without a segmentation, a box was given only if the segmenter failed on it.
        lesion = segmentation.bbox if segmentation is not None else prompt.box
        with self.stages.timed("classify") as classifying:
            classification = await self.classifier.classify(
                upload.data, modality, request.explain, lesion
            )
            if classification.heatmap_png is not None:
                heatmap = _decode_png(classification.heatmap_png, "classifier", "heatmap")
                blobs.append(PendingBlob.of("heatmap", heatmap, PNG))
                classification = classification.model_copy(update={"heatmap_png": None})
        return ModelOutcome(
            classification, segmentation, blobs, segment_ms, classifying.ms, unrefined
        )

    async def _store(
        self,
        owner: str,
        upload: Upload,
        request: AnalysisRequest,
        outcome: ModelOutcome,
        validation: Stopwatch,
        total: Stopwatch,
        key: IdempotencyKey | None,
    ) -> Analysis:
        """Blobs first, then the record; on any failure, remove the blobs already written."""
        analysis_id = uuid.uuid4().hex
        with self.stages.timed("store") as storing:
            try:
                for blob in outcome.blobs:
                    name = blob_key(owner, analysis_id, blob.kind)
                    with self.metrics.store_call("blob", "put"):
                        await self.blobs.put(name, blob.data, blob.content_type)
                stored = {blob.kind: blob.stored_blob(analysis_id) for blob in outcome.blobs}
                result = outcome.classification
                roi = _region(outcome, request.prompt, stored, _spacing(request, upload))
                analysis = Analysis(
                    id=analysis_id,
                    owner=owner,
                    modality=request.modality,
                    label=result.label,
                    probabilities=result.probabilities,
                    confidence=result.confidence,
                    decision_threshold=result.decision_threshold,
                    roi=roi,
                    heatmap=stored.get("heatmap"),
                    models=StageModels(
                        classifier=result.model,
                        segmenter=outcome.segmentation.model if outcome.segmentation else None,
                    ),
                    caveats=[*result.caveats, *_input_caveats(roi, outcome.unrefined)],
                    image=StoredImage(
                        **stored["image"].model_dump(),
                        width=upload.width,
                        height=upload.height,
                        format=upload.format,
                    ),
                    dicom=upload.dicom,
                    # The record insert is the last step; its own few ms are not counted.
                    timings=Timings(
                        validate_ms=validation.ms,
                        segment_ms=outcome.segment_ms,
                        classify_ms=outcome.classify_ms,
                        store_ms=storing.lap_ms(),
                        total_ms=total.lap_ms(),
                    ),
                    created_at=self.clock(),
                )
                with self.metrics.store_call("result", "add"):
                    await self.results.add(analysis, key)
            except BaseException:
                # Shielded: a cancelled request must still take its blobs with it.
                with anyio.CancelScope(shield=True):
                    await self._remove_blobs(analysis_prefix(owner, analysis_id))
                raise
        return analysis

    async def _remove_blobs(self, prefix: str) -> None:
        try:
            with self.metrics.store_call("blob", "delete"):
                await self.blobs.delete_prefix(prefix)
        except Exception:
            # Never masks the error that brought us here; the log names what to clean up.
            log.exception("could not remove blobs under %s; they are orphans now", prefix)

    async def get(self, owner: str, analysis_id: str) -> Analysis:
        with self.metrics.store_call("result", "get"):
            return await self.results.get(owner, analysis_id)

    async def list(self, owner: str, limit: int, cursor: str | None) -> ResultPage:
        position = PageCursor.decode(cursor) if cursor else None
        with self.metrics.store_call("result", "list"):
            return await self.results.list(owner, limit, position)

    async def delete(self, owner: str, analysis_id: str) -> None:
        with self.metrics.store_call("result", "delete"):
            await self.results.delete(owner, analysis_id)
        await self._remove_blobs(analysis_prefix(owner, analysis_id))

    async def open_blob(self, owner: str, analysis_id: str, kind: BlobKind) -> BlobStream:
        """The bytes of one blob of the caller's analysis; `NotFound` if it has none."""
        analysis = await self.get(owner, analysis_id)
        blob = analysis.blob(kind)
        if blob is None:
            raise NotFound(f"this analysis has no {kind}")
        chunks = self.blobs.stream(blob_key(owner, analysis_id, kind))
        return BlobStream(blob.content_type, blob.size, blob.sha256, chunks)


def _input_caveats(roi: RegionOfInterest | None, unrefined: str | None) -> list[Caveat]:
    """The models are trained and measured on lesion crops; say when they got something else."""
    if unrefined is not None:
        return [
            Caveat(
                code="segmenter_unavailable",
                detail=f"the segmenter is unavailable ({unrefined}), so the lesion was classified"
                " on your box as drawn, not on its outline found by SAM: a box that does not"
                " follow the lesion's edges costs accuracy",
            )
        ]
    if roi is None:
        detail = (
            "no lesion region was extracted (extract_roi false), so the image was classified as"
            " uploaded: if it is a whole image, not a lesion crop, expect markedly lower accuracy"
        )
    elif not roi.lesion_found and roi.crop is None:
        detail = (
            "the segmenter found no lesion, so the whole image was classified: expect markedly"
            " lower accuracy than on a lesion crop"
        )
    else:
        return []
    return [Caveat(code="no_lesion_crop", detail=detail)]


def _region(
    outcome: ModelOutcome,
    prompt: Prompt,
    blobs: dict[BlobKind, StoredBlob],
    spacing: tuple[float, float] | None,
) -> RegionOfInterest | None:
    segmentation, given = outcome.segmentation, prompt if prompt.given else None
    box_size = lesion_size(prompt.box, None, spacing) if prompt.box else None
    if segmentation is None:  # not asked for, or failed on the caller's box
        if outcome.unrefined is None:
            return None
        return RegionOfInterest(lesion_found=False, prompt=given, bbox=prompt.box, size=box_size)
    if not segmentation.lesion_found:
        crop = blobs.get("roi")  # of the caller's box, if one was given
        bbox = segmentation.bbox if crop else None
        return RegionOfInterest(
            lesion_found=False, prompt=given, bbox=bbox, crop=crop, size=box_size
        )
    assert segmentation.bbox is not None
    return RegionOfInterest(
        lesion_found=True,
        prompt=given,
        bbox=segmentation.bbox,
        area=segmentation.area,
        score=segmentation.score,
        mask=blobs["mask"],
        crop=blobs["roi"],
        size=lesion_size(segmentation.bbox, segmentation.area, spacing),
    )


def _spacing(request: AnalysisRequest, upload: Upload) -> tuple[float, float] | None:
    """The caller's pixel spacing, else a DICOM file's own."""
    if request.pixel_spacing_mm is not None:
        return request.pixel_spacing_mm
    if upload.dicom is not None and upload.dicom.pixel_spacing_mm is not None:
        row, column = upload.dicom.pixel_spacing_mm
        return row, column
    return None


def lesion_size(
    box: BoundingBox, mask_area: int | None, spacing: tuple[float, float] | None
) -> LesionSize:
    """Width and height of the box, area of the mask (or of the box's inscribed ellipse, the
    shape the classifier is shown for a box); in mm too with a (row, column) spacing."""
    width, height = box.x1 - box.x0, box.y1 - box.y0
    area = float(mask_area) if mask_area is not None else math.pi / 4 * width * height
    size = LesionSize(
        measured_on="mask" if mask_area is not None else "box",
        width_px=width,
        height_px=height,
        area_px=round(area, 1),
    )
    if spacing is None:
        return size
    row_mm, column_mm = spacing
    return size.model_copy(
        update={
            "width_mm": round(width * column_mm, 2),
            "height_mm": round(height * row_mm, 2),
            "area_mm2": round(area * row_mm * column_mm, 2),
        }
    )
