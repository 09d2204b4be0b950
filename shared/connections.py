"""Deadlines on the connections a service holds, so that no client can hold them open for free.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that
never sends a request, nor one that trickles its headers a byte at a time (slowloris): left
alone, enough of them use up the process's file descriptors and `/healthz` goes unanswered.
`DeadlineProtocol` closes a connection whose request head is not complete `head_timeout_s`
after it opened (or after its last response); the body has its own deadline
(`BodySizeLimitMiddleware`), and `limit_concurrency` answers 503 beyond a connection cap.
"""

import asyncio
import json
import resource
from asyncio import TimerHandle
from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from branet_shared.errors import PROBLEM_MEDIA_TYPE, MalformedRequest
from branet_shared.headers import SECURITY_HEADERS


class ConnectionSettings(BaseSettings):
    """Every service's connection limits (with its own env prefix)."""

    head_timeout_s: float = Field(
        10.0, gt=0, description="a request line and headers must arrive within this"
    )
    body_timeout_s: float = Field(
        120.0, gt=0, description="a request body must arrive within this (10 MB at ~85 KB/s)"
    )
    max_connections: int = Field(
        4096, ge=16, description="open connections and requests; beyond, requests get 503"
    )


class DeadlineProtocol(HttpToolsProtocol):
    head_timeout_s: ClassVar[float] = 10.0
    _head_deadline: TimerHandle | None = None

    @classmethod
    def with_head_timeout(cls, seconds: float) -> type["DeadlineProtocol"]:
        return type("DeadlineProtocol", (cls,), {"head_timeout_s": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Armed for keep-alive (no pipelined request parsed already): the next head is due.
        if self.timeout_keep_alive_task is not None:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to unparsable HTTP, as every other answer: a problem document with
        the security headers (uvicorn's own is plain text without them)."""
        error = MalformedRequest(msg)
        body = json.dumps(
            {"type": f"urn:branet:problem:{error.code}", "title": error.title, "status": 400}
            | {"detail": "the request is not valid HTTP", "code": error.code}
        ).encode()
        headers = [
            *self.server_state.default_headers,
            *SECURITY_HEADERS,
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\n" + head + b"\r\n" + body)
        self.transport.close()

    def _head_too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_connection_options(settings: ConnectionSettings) -> dict[str, Any]:
    """uvicorn.run's options for these limits; raises the open-file limit to fit them."""
    _allow_open_files(settings.max_connections + 256)  # + model files, logs, stores
    return {
        "http": DeadlineProtocol.with_head_timeout(settings.head_timeout_s),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": 5,
    }


def _allow_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
