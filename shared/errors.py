"""One error hierarchy for every service, answered as RFC 9457 `application/problem+json`.

Handlers raise a `BraNetError` subclass; `install_error_handlers` turns it (and FastAPI's own
validation and routing errors) into a problem document with a stable `code`. Unexpected
exceptions become a bare 500 without internals: no stack trace or URL leaves the service.
"""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from branet_shared.schemas import Problem

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


class BraNetError(Exception):
    """An error the client can act on; subclasses fix the HTTP status and the stable code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    # Sent as Retry-After unless the raiser gives one: every 503 says when to try again.
    retry_after_s: ClassVar[int | None] = None

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        if self.retry_after_s is not None:
            self.headers.setdefault("Retry-After", str(self.retry_after_s))


class UnsupportedMediaType(BraNetError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class MalformedRequest(BraNetError):
    """Not HTTP the server can parse: answered by the server itself, before any route."""

    status, code, title = 400, "malformed_request", "Malformed request"


class RequestTimeout(BraNetError):
    status, code, title = 408, "request_timeout", "Request timeout"


class PayloadTooLarge(BraNetError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class InvalidImage(BraNetError):
    status, code, title = 422, "invalid_image", "Invalid image"


class InvalidParameter(BraNetError):
    status, code, title = 422, "invalid_parameter", "Invalid parameter"


class Unauthenticated(BraNetError):
    status, code, title = 401, "unauthenticated", "Unauthenticated"


class NotFound(BraNetError):
    status, code, title = 404, "not_found", "Not found"


class IdempotencyKeyReused(BraNetError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class MethodNotAllowed(BraNetError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class ModelUnavailable(BraNetError):
    status, code, title = 503, "model_unavailable", "Model unavailable"
    retry_after_s = 10


class ModelFileError(ModelUnavailable):
    """A model file or checkpoint is configured but cannot be used (missing, not the one its
    card or setting pins, unreadable); the message says why. Its service stays up, not ready."""

    title = "Model file unusable"
    retry_after_s = 60  # a new deploy or configuration is needed, not a moment's patience


class StoreUnavailable(BraNetError):
    status, code, title = 503, "store_unavailable", "Storage unavailable"
    retry_after_s = 5


class RateLimited(BraNetError):
    status, code, title = 429, "rate_limited", "Too many requests"


class Overloaded(BraNetError):
    status, code, title = 503, "overloaded", "At capacity"
    retry_after_s = 2


# What a route that takes an image upload and runs a model can answer.
IMAGE_UPLOAD_ERRORS: tuple[type[BraNetError], ...] = (
    UnsupportedMediaType,
    PayloadTooLarge,
    InvalidImage,
    InvalidParameter,
    ModelUnavailable,
)

ERRORS_BY_CODE: dict[str, type[BraNetError]] = {
    cls.code: cls
    for cls in (
        BraNetError,
        UnsupportedMediaType,
        MalformedRequest,
        RequestTimeout,
        PayloadTooLarge,
        InvalidImage,
        InvalidParameter,
        IdempotencyKeyReused,
        Unauthenticated,
        NotFound,
        MethodNotAllowed,
        ModelUnavailable,
        StoreUnavailable,
        RateLimited,
        Overloaded,
    )
}


def problem_response(error: BraNetError, request: Request) -> JSONResponse:
    problem = Problem(
        type=f"urn:branet:problem:{error.code}",
        title=error.title,
        status=error.status,
        detail=error.detail,
        code=error.code,
        instance=request.url.path,
        request_id=correlation_id.get(),
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        location = ".".join(
            str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")
        )
        parts.append(f"{location or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


async def _on_branet_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BraNetError)
    if exc.status >= 500:
        log.warning("request failed: %s: %s", exc.code, exc.detail)
    return problem_response(exc, request)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(InvalidParameter(_validation_detail(exc)), request)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, BraNetError):  # e.g. the body limit, hit while parsing a form
        return problem_response(exc.__cause__, request)
    error: BraNetError
    if exc.status_code == 404:
        error = NotFound("no such resource")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed here")
    elif exc.status_code == 413:
        error = PayloadTooLarge(str(exc.detail))
    elif 400 <= exc.status_code < 500:
        error = InvalidParameter(str(exc.detail))
    else:
        error = BraNetError("the service failed to answer")
    return problem_response(error, request)


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(BraNetError("the service failed to answer; try again"), request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BraNetError, _on_branet_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"


def problem_content(codes: list[str]) -> dict[str, Any]:
    """An OpenAPI `content`: a Problem as `application/problem+json` whose `code` is one of
    `codes` (so that a generated client knows which it can get)."""
    code = {"type": "string", "enum": codes}
    narrowed = {"properties": {"code": code}, "required": ["code"]}
    schema = {"allOf": [{"$ref": PROBLEM_SCHEMA_REF}, narrowed]}
    return {PROBLEM_MEDIA_TYPE: {"schema": schema}}


def problem_responses(*errors: type[BraNetError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting which problems a route can answer."""
    codes: dict[int, list[str]] = {}
    for error in errors:
        codes.setdefault(error.status, []).append(error.code)
    return {
        status: {
            "description": ", ".join(f"`{code}`" for code in status_codes),
            "content": problem_content(status_codes),
        }
        for status, status_codes in codes.items()
    }
