"""What every BraNet service has in common: the app object, its middleware, and how it runs."""

import argparse
import importlib.metadata
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import uvicorn
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from opentelemetry.sdk.trace import TracerProvider
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from branet_shared.connections import ConnectionSettings, uvicorn_connection_options
from branet_shared.errors import (
    PayloadTooLarge,
    RequestTimeout,
    install_error_handlers,
    problem_response,
)
from branet_shared.headers import API_POLICY, COMMON_HEADERS, DOCS_POLICY
from branet_shared.logs import configure_logging
from branet_shared.metrics import ServiceMetrics
from branet_shared.openapi import install_openapi
from branet_shared.schemas import CheckResult, Readiness
from branet_shared.tracing import instrument_app

REQUEST_ID_HEADER = "X-Request-ID"
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]
SettingsT = TypeVar("SettingsT", bound=ConnectionSettings)


def _package_version() -> str:
    try:
        return importlib.metadata.version("branet")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "0.0.0"


# Every service reports the version of the code it runs: the one in pyproject.toml.
VERSION = _package_version()


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes`: at once from Content-Length, else while streaming; and
    bodies that take longer than `timeout_s` to arrive (a client sending 100 bytes a second
    would hold a connection and a task for a day).

    The upload is never held whole in memory before the limit applies.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 120.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # Outside the exception middleware here, so answer directly.
            response = problem_response(self._too_large(), Request(scope))
            await response(scope, receive, send)
            return
        received, complete = 0, False
        deadline = anyio.current_time() + self.timeout_s

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body, receive() waits for a disconnect: no deadline
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()) as waiting:
                message = await receive()
            if waiting.cancelled_caught:
                raise RequestTimeout(f"the request body did not arrive within {self.timeout_s:g} s")
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request bodies may be at most {self.max_bytes} bytes")


@dataclass(frozen=True)
class PagePolicy:
    """A browser page's own content security policy, for its exact paths and path prefixes;
    its files may be cached (revalidated: `no-cache`), unlike API answers."""

    policy: str
    paths: frozenset[str]
    prefixes: tuple[str, ...]

    def covers(self, path: str) -> bool:
        return path in self.paths or path.startswith(self.prefixes)


DOCS_PAGE = PagePolicy(DOCS_POLICY, frozenset(), ("/docs", "/static-"))


class SecurityHeadersMiddleware:
    """Headers every response gets, errors included (`branet_shared.headers`): API answers
    are never cached; a page's files are revalidated."""

    def __init__(self, app: ASGIApp, pages: Sequence[PagePolicy] = (DOCS_PAGE,)) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = next((page for page in self.pages if page.covers(scope["path"])), None)
        policy = API_POLICY if page is None else page.policy
        caching = "no-store" if page is None else "no-cache"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS:
                    headers.append(name.decode(), value.decode())
                headers["content-security-policy"] = policy
                if "cache-control" not in headers:
                    headers["cache-control"] = caching
            await send(message)

        await self.app(scope, receive, send_with_headers)


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operationId: its name in camelCase (`create_analysis` →
    `createAnalysis`), which generated clients turn into their method names."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def create_service_app(
    *,
    title: str,
    description: str,
    lifespan: Lifespan,
    max_body_bytes: int,
    metrics: ServiceMetrics,
    tracer_provider: TracerProvider | None,
    body_timeout_s: float = 120.0,
    pages: Sequence[PagePolicy] = (),
) -> FastAPI:
    """A FastAPI app with offline docs, problem+json errors, request ids, a body limit,
    Prometheus series at `/metrics` and, where a provider is given, traces; `pages` are the
    app's browser pages besides the docs, each with its own policy."""
    app = FastAPIOffline(
        title=title,
        version=VERSION,
        description=description,
        lifespan=lifespan,
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    install_openapi(app)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, timeout_s=body_timeout_s)
    metrics.install(app)  # outside the body limit: its 413s are counted too
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name=REQUEST_ID_HEADER,
        validator=_is_safe_request_id,
    )
    # Around everything else: the trace starts before the rest runs, and every log line has it
    # (the instrumentation must find Starlette's ServerErrorMiddleware on top, so it goes first).
    instrument_app(app, tracer_provider)
    _wrap_outermost(app, partial(SecurityHeadersMiddleware, pages=(DOCS_PAGE, *pages)))
    return app


def _wrap_outermost(app: FastAPI, middleware: Callable[[ASGIApp], ASGIApp]) -> None:
    """Put `middleware` around Starlette's ServerErrorMiddleware, which `add_middleware` cannot
    reach: a 500 it answers passes through `middleware` too."""
    build = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return middleware(build())

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]


def readiness_response(
    checks: dict[str, CheckResult], optional: Collection[str] = ()
) -> JSONResponse:
    """200 when every check but the `optional` ones passed, else 503; the body says which."""
    ready = all(check.ok for name, check in checks.items() if name not in optional)
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _is_safe_request_id(value: str) -> bool:
    # Caller-chosen ids end up in logs: keep them short and printable.
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value)


def run_service(
    app_factory: Callable[[], FastAPI],
    *,
    service: str,
    host: str,
    port: int,
    log_level: str,
    connections: ConnectionSettings,
) -> None:
    configure_logging(service, log_level)
    uvicorn.run(
        app_factory(),
        host=host,
        port=port,
        log_config=None,
        **uvicorn_connection_options(connections),
        # uvicorn would believe the leftmost X-Forwarded-For entry of a trusted peer, which the
        # client writes; the gateway takes the one its proxies appended (client_address.py).
        proxy_headers=False,
        # Cloud Run sends SIGKILL 10 s after SIGTERM: finish what is running within 8.
        timeout_graceful_shutdown=8,
    )


def environment_help(settings: type[BaseSettings]) -> str:
    """Every environment variable `settings` reads, with its default and meaning."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    lines = ["environment (or a .env file):"]
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names = (
            [str(choice) for choice in alias.choices]
            if isinstance(alias, AliasChoices)
            else [f"{prefix}{name}".upper()]
        )
        default = (
            "(computed)"
            if field.default_factory is not None
            else repr(str(field.default) if isinstance(field.default, Path) else field.default)
        )
        lines.append(f"  {' or '.join(names)}  default {default}")
        if field.description:
            lines.append(f"      {field.description}")
    return "\n".join(lines)


def service_main(
    create_app: Callable[[SettingsT], FastAPI],
    settings_type: type[SettingsT],
    *,
    service: str,
    description: str,
    argv: Sequence[str] | None = None,
) -> None:
    """`branet-<service>`: with `--help`, what it is and every setting with its default;
    else the service, configured by its environment."""
    parser = argparse.ArgumentParser(
        prog=f"branet-{service}",
        description=description,
        epilog=environment_help(settings_type),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=VERSION)
    parser.parse_args(argv)
    settings = settings_type()
    host, port, log_level = (getattr(settings, key) for key in ("host", "port", "log_level"))
    run_service(
        lambda: create_app(settings),
        service=service,
        host=host,
        port=port,
        log_level=log_level,
        connections=settings,
    )
