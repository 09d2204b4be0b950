"""The segmenter service's HTTP face: a lesion mask and ROI crop for one image."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, TypedDict

import anyio
import anyio.to_thread
import torch
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from branet_segmenter.segment import CheckpointError, EmbeddingCache, LesionSegmenter
from branet_segmenter.settings import SegmenterSettings
from branet_shared.allocator import keep_freed_memory
from branet_shared.errors import (
    IMAGE_UPLOAD_ERRORS,
    ModelUnavailable,
    problem_responses,
)
from branet_shared.images import (
    MAX_IMAGE_BYTES,
    check_prompt_fits,
    parse_prompt,
    validate_image,
)
from branet_shared.model_files import local_copy
from branet_shared.schemas import (
    CheckResult,
    Liveness,
    Modality,
    ModelInfo,
    ModelsResponse,
    Readiness,
    SegmentResponse,
    Unavailable,
)
from branet_shared.web import create_service_app, readiness_response, run_service

VERSION = "0.1.0"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedSegmenter:
    """The segmenter, or why there is none."""

    segmenter: LesionSegmenter | None
    reason: str = ""


class State(TypedDict):
    loaded: LoadedSegmenter
    limiter: anyio.CapacityLimiter
    settings: SegmenterSettings


def load_segmenter(settings: SegmenterSettings) -> LoadedSegmenter:
    if settings.checkpoint is None:
        return LoadedSegmenter(None, "no SAM checkpoint configured (set SEGMENTER_CHECKPOINT)")
    try:
        checkpoint = local_copy(settings.checkpoint, settings.cache_dir)
    except Exception as exc:  # any failure to fetch leaves the service alive, not ready
        return LoadedSegmenter(None, f"cannot fetch {settings.checkpoint}: {exc}")
    try:
        segmenter = LesionSegmenter.load(
            settings.model_type,
            checkpoint,
            settings.checkpoint_sha256,
            EmbeddingCache(settings.embedding_cache_entries),
            settings.precision,
            settings.compile,
        )
    except CheckpointError as exc:
        return LoadedSegmenter(None, f"{exc} (check SEGMENTER_CHECKPOINT)")
    segmenter.warm_up()
    return LoadedSegmenter(segmenter)


def get_loaded(request: Request) -> LoadedSegmenter:
    loaded: LoadedSegmenter = request.state.loaded
    return loaded


def get_limiter(request: Request) -> anyio.CapacityLimiter:
    limiter: anyio.CapacityLimiter = request.state.limiter
    return limiter


def get_settings(request: Request) -> SegmenterSettings:
    settings: SegmenterSettings = request.state.settings
    return settings


LoadedDep = Annotated[LoadedSegmenter, Depends(get_loaded)]
LimiterDep = Annotated[anyio.CapacityLimiter, Depends(get_limiter)]
SettingsDep = Annotated[SegmenterSettings, Depends(get_settings)]


def create_app(settings: SegmenterSettings | None = None) -> FastAPI:
    settings = settings or SegmenterSettings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        if settings.keep_freed_memory and not keep_freed_memory():
            log.info("freed memory goes back to the kernel: the C library is not glibc")
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        loaded = await anyio.to_thread.run_sync(load_segmenter, settings)
        if loaded.segmenter is None:
            log.warning("segmenter not ready: %s", loaded.reason)
        else:
            log.info("loaded SAM %s", loaded.segmenter.ref)
        yield {
            "loaded": loaded,
            "limiter": anyio.CapacityLimiter(settings.max_concurrency),
            "settings": settings,
        }

    app = create_service_app(
        title="BraNet segmenter",
        version=VERSION,
        description="Private service: Segment Anything lesion masks and ROI crops.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
    )

    @app.post(
        "/v1/segment",
        responses=problem_responses(*IMAGE_UPLOAD_ERRORS),
    )
    async def segment(
        loaded: LoadedDep,
        limiter: LimiterDep,
        config: SettingsDep,
        file: Annotated[UploadFile, File(description="JPEG or PNG")],
        modality: Annotated[Modality, Form()],
        box: Annotated[str | None, Form(description="x0,y0,x1,y1 around the lesion")] = None,
        points: Annotated[
            str | None, Form(description="x,y,label;... (label 1 lesion, 0 background)")
        ] = None,
    ) -> SegmentResponse:
        """Prompted mode when a box or points are given, else automatic mode."""
        if loaded.segmenter is None:
            raise ModelUnavailable(f"the segmenter has no model: {loaded.reason}")
        sam = loaded.segmenter
        prompt = parse_prompt(box, points)
        data = await file.read(MAX_IMAGE_BYTES + 1)

        def run() -> SegmentResponse:
            upload = validate_image(data)
            check_prompt_fits(prompt, upload.image)
            return sam.segment(upload, modality, prompt, config.automatic, config.roi_margin)

        return await anyio.to_thread.run_sync(run, limiter=limiter)

    @app.get("/v1/models")
    async def models(loaded: LoadedDep, config: SettingsDep) -> ModelsResponse:
        if loaded.segmenter is None:
            return ModelsResponse(
                models=[],
                unavailable=[
                    Unavailable(
                        service="segmenter", name=f"sam_{config.model_type}", reason=loaded.reason
                    )
                ],
            )
        ref = loaded.segmenter.ref
        info = ModelInfo(
            name=ref.name,
            version=ref.version,
            task="segmentation",
            architecture=f"segment-anything {config.model_type}",
            sha256=loaded.segmenter.checkpoint_sha256,
            runtime=loaded.segmenter.runtime,
        )
        return ModelsResponse(models=[info])

    @app.get("/healthz")
    async def healthz() -> Liveness:
        return Liveness(service="segmenter", version=VERSION)

    @app.get("/readyz", responses={503: {"model": Readiness}})
    async def readyz(loaded: LoadedDep) -> JSONResponse:
        check = CheckResult(ok=loaded.segmenter is not None, detail=loaded.reason)
        return readiness_response({"sam": check})

    return app


def main() -> None:
    settings = SegmenterSettings()
    run_service(
        lambda: create_app(settings),
        service="segmenter",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )
