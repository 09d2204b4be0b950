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
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import anyio.to_thread

from branet_gateway.model_clients import ClassifierClient, SegmenterClient
from branet_shared.errors import ModelUnavailable, NotFound
from branet_shared.images import ValidatedImage, check_box_fits, validate_image
from branet_shared.schemas import (
    Analysis,
    BoundingBox,
    Modality,
    RegionOfInterest,
    SegmentResponse,
    StageModels,
    StoredBlob,
    StoredImage,
    Timings,
)
from branet_shared.storage import (
    BlobStore,
    PageCursor,
    ResultPage,
    ResultStore,
    analysis_prefix,
    blob_key,
)
from branet_shared.storage.base import BlobKind

log = logging.getLogger(__name__)
PNG = "image/png"


@dataclass(frozen=True)
class PendingBlob:
    kind: BlobKind
    data: bytes
    content_type: str


@dataclass(frozen=True)
class BlobStream:
    content_type: str
    chunks: AsyncIterator[bytes]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _decode_png(field: str | None) -> bytes:
    if field is None:
        raise ModelUnavailable("the segmenter answered without its mask or crop")
    try:
        return base64.b64decode(field, validate=True)
    except binascii.Error:
        raise ModelUnavailable("the segmenter answered a malformed mask or crop") from None


class AnalysisService:
    def __init__(
        self,
        blobs: BlobStore,
        results: ResultStore,
        classifier: ClassifierClient,
        segmenter: SegmenterClient,
        *,
        max_image_bytes: int,
        max_image_pixels: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.blobs = blobs
        self.results = results
        self.classifier = classifier
        self.segmenter = segmenter
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self.clock = clock

    async def create(
        self,
        owner: str,
        data: bytes,
        modality: Modality,
        extract_roi: bool,
        box: BoundingBox | None,
    ) -> Analysis:
        started = time.perf_counter()
        upload = await anyio.to_thread.run_sync(self._validate, data)
        if box is not None:
            check_box_fits(box, upload.image)
        validate_ms = _ms_since(started)

        segment_started = time.perf_counter()
        segmentation = None
        if extract_roi or box is not None:
            segmentation = await self.segmenter.segment(upload.data, modality, box)
        segment_ms = _ms_since(segment_started) if segmentation is not None else None

        pending = [PendingBlob("image", upload.data, upload.content_type)]
        to_classify = upload.data
        if segmentation is not None and segmentation.lesion_found:
            mask, crop = _decode_png(segmentation.mask_png), _decode_png(segmentation.roi_png)
            pending += [PendingBlob("mask", mask, PNG), PendingBlob("roi", crop, PNG)]
            to_classify = crop

        classify_started = time.perf_counter()
        result = await self.classifier.classify(to_classify, modality)
        classify_ms = _ms_since(classify_started)

        analysis_id = uuid.uuid4().hex
        prefix = analysis_prefix(owner, analysis_id)

        def stored(blob: PendingBlob) -> StoredBlob:
            return StoredBlob(
                url=f"/v1/analyses/{analysis_id}/{blob.kind}",
                content_type=blob.content_type,
                size=len(blob.data),
                sha256=hashlib.sha256(blob.data).hexdigest(),
            )

        try:
            store_started = time.perf_counter()
            for blob in pending:
                key = blob_key(owner, analysis_id, blob.kind)
                await self.blobs.put(key, blob.data, blob.content_type)
            image = stored(pending[0])
            analysis = Analysis(
                id=analysis_id,
                owner=owner,
                modality=modality,
                label=result.label,
                probabilities=result.probabilities,
                confidence=result.confidence,
                roi=_region(segmentation, box, [stored(blob) for blob in pending[1:]]),
                models=StageModels(
                    classifier=result.model,
                    segmenter=segmentation.model if segmentation is not None else None,
                ),
                image=StoredImage(
                    **image.model_dump(),
                    width=upload.width,
                    height=upload.height,
                    format=upload.format,
                ),
                # The record insert is the last step; its own few ms are not counted.
                timings=Timings(
                    validate_ms=validate_ms,
                    segment_ms=segment_ms,
                    classify_ms=classify_ms,
                    store_ms=_ms_since(store_started),
                    total_ms=_ms_since(started),
                ),
                created_at=self.clock(),
            )
            await self.results.add(analysis)
        except BaseException:
            # Shielded: a cancelled request must still take its blobs with it.
            with anyio.CancelScope(shield=True):
                await self._remove_blobs(prefix)
            raise
        return analysis

    def _validate(self, data: bytes) -> ValidatedImage:
        return validate_image(
            data, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
        )

    async def _remove_blobs(self, prefix: str) -> None:
        try:
            await self.blobs.delete_prefix(prefix)
        except Exception:
            # Never masks the error that brought us here; the log names what to clean up.
            log.exception("could not remove blobs under %s; they are orphans now", prefix)

    async def get(self, owner: str, analysis_id: str) -> Analysis:
        return await self.results.get(owner, analysis_id)

    async def list(self, owner: str, limit: int, cursor: str | None) -> ResultPage:
        position = PageCursor.decode(cursor) if cursor else None
        return await self.results.list(owner, limit, position)

    async def delete(self, owner: str, analysis_id: str) -> None:
        await self.results.delete(owner, analysis_id)
        await self._remove_blobs(analysis_prefix(owner, analysis_id))

    async def open_blob(self, owner: str, analysis_id: str, kind: BlobKind) -> BlobStream:
        """The bytes of one blob of the caller's analysis; `NotFound` if it has none."""
        analysis = await self.results.get(owner, analysis_id)
        if kind == "image":
            content_type = analysis.image.content_type
        else:
            roi = analysis.roi
            blob = None if roi is None else (roi.mask if kind == "mask" else roi.crop)
            if blob is None:
                raise NotFound(f"this analysis has no {kind}")
            content_type = blob.content_type
        chunks = self.blobs.stream(blob_key(owner, analysis_id, kind))
        return BlobStream(content_type=content_type, chunks=chunks)


def _region(
    segmentation: SegmentResponse | None, box: BoundingBox | None, blobs: list[StoredBlob]
) -> RegionOfInterest | None:
    if segmentation is None:
        return None
    if not segmentation.lesion_found:
        return RegionOfInterest(lesion_found=False, prompt=box)
    return RegionOfInterest(
        lesion_found=True,
        prompt=box,
        bbox=segmentation.bbox,
        area=segmentation.area,
        score=segmentation.score,
        mask=blobs[0],
        crop=blobs[1],
    )
