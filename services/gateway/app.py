"""The gateway's HTTP face: the public /v1 API, health, the offline docs and the clinician's
page (`page.py`)."""

import logging
import os
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypedDict, get_args

import anyio
import httpx
from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry.sdk.trace import TracerProvider

from branet_gateway.admission import AdmissionControl, rate_limit_storage
from branet_gateway.analyses import AnalysisRequest, AnalysisService, BlobStream
from branet_gateway.auth import CurrentUser, FirebaseTokenVerifier
from branet_gateway.client_address import ClientAddressMiddleware
from branet_gateway.metrics import GatewayMetrics
from branet_gateway.model_clients import ClassifierClient, SegmenterClient
from branet_gateway.page import add_page_routes, page_policy
from branet_gateway.service_auth import GoogleIdTokenAuth
from branet_gateway.settings import GatewaySettings
from branet_gateway.storage import BlobStore, ResultStore
from branet_gateway.storage.base import BlobKind
from branet_gateway.storage.firestore import FirestoreResultStore
from branet_gateway.storage.gcs import GCSBlobStore
from branet_gateway.storage.local import LocalBlobStore
from branet_gateway.storage.sqlite import SQLiteResultStore
from branet_gateway.sweeper import OrphanSweeper
from branet_gateway.validation import Validator
from branet_shared.errors import (
    IMAGE_UPLOAD_ERRORS,
    IdempotencyKeyReused,
    InvalidParameter,
    NotFound,
    Overloaded,
    RateLimited,
    Unauthenticated,
    problem_responses,
)
from branet_shared.images import parse_pixel_spacing, parse_prompt
from branet_shared.metrics import Stages
from branet_shared.schemas import (
    BOX_PATTERN,
    POINTS_PATTERN,
    SPACING_PATTERN,
    Analysis,
    AnalysisPage,
    CheckResult,
    Liveness,
    Modality,
    ModelsResponse,
    Readiness,
)
from branet_shared.tracing import instrument_client, tracer, tracer_provider
from branet_shared.web import VERSION, create_service_app, readiness_response, service_main

log = logging.getLogger(__name__)
DESCRIPTION = (
    "Benign/malignant analysis of breast ultrasound and mammography images. "
    "Errors are `application/problem+json` with a stable `code`."
)


class State(TypedDict):
    settings: GatewaySettings
    analyses: AnalysisService
    admission: AdmissionControl
    verifier: FirebaseTokenVerifier | None


def get_analyses(request: Request) -> AnalysisService:
    analyses: AnalysisService = request.state.analyses
    return analyses


def get_admission(request: Request) -> AdmissionControl:
    admission: AdmissionControl = request.state.admission
    return admission


Analyses = Annotated[AnalysisService, Depends(get_analyses)]
Admission = Annotated[AdmissionControl, Depends(get_admission)]
# Every route that reads the caller's data answers these besides its own.
AUTH_ERRORS = (Unauthenticated, NotFound)
# Headers the OpenAPI document declares, for generated clients.
LOCATION_HEADER = {"description": "the new analysis's URL", "schema": {"type": "string"}}
REPLAYED = {
    "description": "`true` when an earlier request with this Idempotency-Key made the analysis",
    "schema": {"type": "string", "enum": ["true"]},
}
BLOB_HEADERS = {
    "ETag": {"description": "the blob's SHA-256, quoted", "schema": {"type": "string"}},
    "Content-Length": {"schema": {"type": "integer"}},
    "Cache-Control": {"schema": {"type": "string"}},
}


async def open_stores(settings: GatewaySettings) -> tuple[BlobStore, ResultStore]:
    """The configured backends: embedded (local folder, SQLite) or cloud (GCS, Firestore)."""
    blobs: BlobStore
    if settings.blob_backend == "gcs":
        endpoint = settings.gcs_endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
        blobs = GCSBlobStore.connect(settings.gcs_bucket, settings.gcp_project, endpoint)
    else:
        blobs = LocalBlobStore(settings.blob_dir)
    results: ResultStore
    if settings.result_backend == "firestore":
        results = FirestoreResultStore.connect(
            settings.gcp_project,
            settings.firestore_database,
            settings.firestore_collection,
            emulator="FIRESTORE_EMULATOR_HOST" in os.environ,
        )
    else:
        results = await SQLiteResultStore.open(settings.sqlite_path)
    return blobs, results


def model_clients(
    settings: GatewaySettings, http: httpx.AsyncClient
) -> tuple[ClassifierClient, SegmenterClient]:
    """Clients of the two model services, signing calls with ID tokens on Cloud Run."""

    def auth_for(url: str) -> httpx.Auth | None:
        if settings.model_auth == "none":
            return None
        return GoogleIdTokenAuth(url, settings.metadata_url, http)

    classifier = ClassifierClient(
        http,
        service="classifier",
        base_url=settings.classifier_url,
        read_timeout_s=settings.classify_timeout_s,
        retries=settings.model_retries,
        auth=auth_for(settings.classifier_url),
    )
    segmenter = SegmenterClient(
        http,
        service="segmenter",
        base_url=settings.segmenter_url,
        read_timeout_s=settings.segment_timeout_s,
        retries=settings.model_retries,
        auth=auth_for(settings.segmenter_url),
    )
    return classifier, segmenter


def create_app(
    settings: GatewaySettings | None = None,
    *,
    mounts: dict[str, httpx.AsyncBaseTransport] | None = None,
    traces: TracerProvider | None = None,
) -> FastAPI:
    """`mounts` (URL prefix → transport) lets tests route model-service calls in-process;
    `traces` replaces the span provider the settings' exporter would make."""
    settings = settings or GatewaySettings()
    metrics = GatewayMetrics()
    provider = traces or tracer_provider("gateway", VERSION, settings.trace_exporter)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        blobs, results = await open_stores(settings)
        http = httpx.AsyncClient(
            mounts=mounts,
            timeout=httpx.Timeout(settings.classify_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        instrument_client(http, provider)
        validator = Validator(
            settings.decode_limits, settings.validate_workers, settings.validate_timeout_s
        )
        await validator.warm_up()

        analyses = AnalysisService(
            blobs,
            results,
            *model_clients(settings, http),
            metrics=metrics,
            stages=Stages(metrics, tracer(provider)),
            validator=validator,
        )
        verifier = None
        if settings.auth_mode == "firebase":
            verifier = FirebaseTokenVerifier(
                http,
                settings.firebase_project_id,
                settings.firebase_certificates_url,
                settings.clock_skew_s,
            )
        else:
            log.warning("AUTH_MODE=none: every request is user %r", settings.local_user)
        admission = AdmissionControl(
            settings.rate_limit_per_user,
            settings.rate_limit_per_ip,
            settings.max_in_flight_analyses,
            metrics,
            rate_limit_storage(settings.rate_limit_storage),
        )
        sweeper = OrphanSweeper(blobs, results, settings.orphan_grace_s, metrics)
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(sweeper.run, settings.sweep_interval_s)
                yield {
                    "settings": settings,
                    "analyses": analyses,
                    "admission": admission,
                    "verifier": verifier,
                }
                background.cancel_scope.cancel()
        finally:
            await http.aclose()
            await results.close()
            await blobs.close()

    app = create_service_app(
        title="BraNet",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
        tracer_provider=provider,
        body_timeout_s=settings.body_timeout_s,
        pages=[page_policy(settings)],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-Request-ID"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
            max_age=600,
        )
    # Outside CORS and the rest: everything after it sees the real client address.
    app.add_middleware(ClientAddressMiddleware, hops=settings.proxy_hops)
    _add_analysis_routes(app)
    _add_service_routes(app)
    add_page_routes(app)
    return app


# 16 points of `65535,65535,1;` each, and spaces.
MAX_POINTS_FIELD = 512
ANALYSIS_FIELDS = (
    "file",
    "modality",
    "extract_roi",
    "box",
    "points",
    "explain",
    "frame",
    "pixel_spacing",
)


def parse_idempotency_key(value: str | None) -> str | None:
    """The header's key: a structured-field string (quoted) or the bare token, printable
    ASCII (the IETF httpapi draft)."""
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or not all(" " <= c <= "~" for c in key):
        raise InvalidParameter("Idempotency-Key must be 1 to 255 printable ASCII characters")
    return key


async def refuse_repeated_fields(request: Request) -> None:
    """A field sent twice would otherwise be silently the last one (a PDF part, then a PNG)."""
    form = await request.form()  # parsed once already for the route's fields: cached
    for name in ANALYSIS_FIELDS:
        if len(form.getlist(name)) > 1:
            raise InvalidParameter(f"{name} was sent more than once")


def _add_analysis_routes(app: FastAPI) -> None:
    @app.post(
        "/v1/analyses",
        status_code=201,
        responses={
            201: {"headers": {"Location": LOCATION_HEADER, "Idempotent-Replayed": REPLAYED}},
            **problem_responses(
                *IMAGE_UPLOAD_ERRORS, IdempotencyKeyReused, Unauthenticated, RateLimited, Overloaded
            ),
        },
        tags=["analyses"],
    )
    async def create_analysis(
        request: Request,
        user: CurrentUser,
        analyses: Analyses,
        admission: Admission,
        response: Response,
        file: Annotated[
            UploadFile,
            File(
                description="JPEG, PNG or DICOM Part 10 (its rendered frame is kept, never the"
                " file), at most 10 MB"
            ),
        ],
        modality: Annotated[Modality, Form()],
        extract_roi: Annotated[bool, Form(description="extract the lesion with SAM first")] = False,
        box: Annotated[
            str | None,
            Form(
                description="x0,y0,x1,y1 around the lesion, in image pixels; implies ROI",
                max_length=64,
                json_schema_extra={"pattern": BOX_PATTERN, "examples": ["120,80,310,260"]},
            ),
        ] = None,
        points: Annotated[
            str | None,
            Form(
                description="x,y,label;... points on (1) or off (0) the lesion; implies ROI",
                max_length=MAX_POINTS_FIELD,  # refused before a byte of it is parsed
                json_schema_extra={"pattern": POINTS_PATTERN, "examples": ["200,170,1;40,30,0"]},
            ),
        ] = None,
        explain: Annotated[
            bool, Form(description="store a Grad-CAM heatmap of the decision (`/heatmap`)")
        ] = False,
        frame: Annotated[
            int, Form(ge=0, le=100_000, description="which frame of a multi-frame DICOM file")
        ] = 0,
        pixel_spacing: Annotated[
            str | None,
            Form(
                description="row_mm,column_mm per pixel, to measure the lesion in mm (a DICOM"
                " file's own PixelSpacing is used without it)",
                max_length=64,
                json_schema_extra={"pattern": SPACING_PATTERN, "examples": ["0.07,0.07"]},
            ),
        ] = None,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=256,
                description="a unique key per analysis (e.g. a UUID): a retry with the same key"
                " and request returns the analysis the first made, never a second (24 h)",
            ),
        ] = None,
    ) -> Analysis:
        await refuse_repeated_fields(request)
        prompt = parse_prompt(box, points)
        key = parse_idempotency_key(idempotency_key)
        client = request.client.host if request.client else "unknown"
        async with admission.admit(user.id, client):
            data = await file.read(analyses.validator.limits.max_bytes + 1)
            wanted = AnalysisRequest(
                modality, extract_roi, prompt, explain, frame, parse_pixel_spacing(pixel_spacing)
            )
            created = await analyses.create(user.id, data, wanted, key)
        response.headers["Location"] = f"/v1/analyses/{created.analysis.id}"
        if created.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return created.analysis

    @app.get(
        "/v1/analyses",
        tags=["analyses"],
        responses=problem_responses(InvalidParameter, Unauthenticated),
    )
    async def list_analyses(
        user: CurrentUser,
        analyses: Analyses,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> AnalysisPage:
        page = await analyses.list(user.id, limit, cursor)
        next_cursor = page.next_cursor.encode() if page.next_cursor else None
        return AnalysisPage(items=page.items, next_cursor=next_cursor)

    @app.get(
        "/v1/analyses/{analysis_id}",
        tags=["analyses"],
        responses=problem_responses(*AUTH_ERRORS),
    )
    async def get_analysis(user: CurrentUser, analyses: Analyses, analysis_id: str) -> Analysis:
        return await analyses.get(user.id, analysis_id)

    @app.delete(
        "/v1/analyses/{analysis_id}",
        status_code=204,
        tags=["analyses"],
        responses=problem_responses(*AUTH_ERRORS),
    )
    async def delete_analysis(user: CurrentUser, analyses: Analyses, analysis_id: str) -> None:
        await analyses.delete(user.id, analysis_id)

    for kind in get_args(BlobKind):
        _add_blob_route(app, kind)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison of an If-None-Match list against the blob's ETag."""
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _blob_headers(blob: BlobStream) -> dict[str, str]:
    # A blob never changes under its URL (a new analysis gets a new id), so the app may keep
    # what it fetched, privately: no shared cache may hold a patient's image.
    return {
        "ETag": f'"{blob.sha256}"',
        "Cache-Control": "private, max-age=31536000, immutable",
        "Accept-Ranges": "none",
        "X-Content-Type-Options": "nosniff",
    }


async def _blob_response(blob: BlobStream, method: str, if_none_match: str | None) -> Response:
    headers = _blob_headers(blob)
    if _matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(blob.size)
    if method == "HEAD":
        return Response(headers=headers, media_type=blob.content_type)
    first = await anext(blob.chunks, b"")  # a missing blob fails here, as a 404

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in blob.chunks:
            yield chunk

    return StreamingResponse(body(), media_type=blob.content_type, headers=headers)


def _add_blob_route(app: FastAPI, kind: BlobKind) -> None:
    async def blob(
        request: Request,
        user: CurrentUser,
        analyses: Analyses,
        analysis_id: str,
        if_none_match: Annotated[
            str | None, Header(description="an ETag from an earlier answer: 304 if unchanged")
        ] = None,
    ) -> Response:
        stream = await analyses.open_blob(user.id, analysis_id, kind)
        return await _blob_response(stream, request.method, if_none_match)

    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": f"the {kind}'s bytes",
            "headers": BLOB_HEADERS,
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                # The upload is kept as it came; what the models made is PNG.
                for media in (("image/png", "image/jpeg") if kind == "image" else ("image/png",))
            },
        },
        304: {"description": "not modified: you hold these bytes already", "headers": BLOB_HEADERS},
        **problem_responses(*AUTH_ERRORS),
    }
    path = f"/v1/analyses/{{analysis_id}}/{kind}"
    for method, verb in (("GET", "get"), ("HEAD", "head")):
        app.add_api_route(
            path,
            blob,
            methods=[method],
            name=f"{verb}_analysis_{kind}",
            tags=["analyses"],
            summary=f"The analysis's {kind} bytes" + (" (headers only)" if verb == "head" else ""),
            response_class=Response,
            responses=responses,
        )


def _add_service_routes(app: FastAPI) -> None:
    @app.get("/v1/models", tags=["models"])
    async def list_models(analyses: Analyses) -> ModelsResponse:
        answers = [await analyses.classifier.models(), await analyses.segmenter.models()]
        return ModelsResponse(
            models=[m for a in answers for m in a.models],
            unavailable=[u for a in answers for u in a.unavailable],
        )

    @app.get("/healthz", tags=["health"])
    async def get_liveness() -> Liveness:
        return Liveness(service="gateway", version=VERSION)

    @app.get(
        "/readyz", tags=["health"], response_model=Readiness, responses={503: {"model": Readiness}}
    )
    async def get_readiness(analyses: Analyses) -> JSONResponse:
        checks = {
            "result_store": await _check(analyses.results.check()),
            "blob_store": await _check(analyses.blobs.check()),
            "classifier": await analyses.classifier.readiness(),
            "segmenter": await analyses.segmenter.readiness(),
        }
        # Without SAM the gateway still classifies whole images: reported, not required.
        return readiness_response(checks, optional={"segmenter"})


async def _check(probe: Awaitable[None]) -> CheckResult:
    try:
        await probe
    except Exception as exc:
        log.warning("store check failed: %s", exc)
        return CheckResult(ok=False, detail=type(exc).__name__)
    return CheckResult(ok=True)


def main(argv: list[str] | None = None) -> None:
    service_main(
        create_app,
        GatewaySettings,
        service="gateway",
        description=DESCRIPTION,
        argv=argv,
    )
