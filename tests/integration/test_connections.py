"""Clients that hold connections without finishing requests cannot starve the gateway."""

import contextlib
import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import start_stack

pytestmark = pytest.mark.integration
IDLE_CONNECTIONS = 2000


@pytest.fixture(scope="module")
def gateway(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    home = tmp_path_factory.mktemp("connections")
    stack = start_stack(home, model_dir, GATEWAY_HEAD_TIMEOUT_S="3", GATEWAY_BODY_TIMEOUT_S="2")
    stack.up(timeout_s=120)
    service = stack.services[-1]
    yield service.url, service.port
    stack.down()


@pytest.fixture
def open_files() -> None:
    """This test's own side needs a descriptor per connection too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_CONNECTIONS + 512
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False


@pytest.mark.usefixtures("open_files")
def test_idle_connections_neither_starve_health_nor_stay_open(gateway: tuple[str, int]) -> None:
    url, port = gateway
    idle = [connect(port) for _ in range(IDLE_CONNECTIONS)]
    try:
        started = time.monotonic()
        health = httpx.get(f"{url}/healthz", timeout=5)
        answered_in = time.monotonic() - started

        assert health.status_code == 200
        assert answered_in < 1.0
        time.sleep(3.5)  # the head deadline
        assert all(closed_by_server(sock) for sock in idle[:50])
    finally:
        for sock in idle:
            sock.close()


def test_trickled_headers_are_cut_off(gateway: tuple[str, int]) -> None:
    _, port = gateway
    sock = connect(port)
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line

    assert closed_by_server(sock)
    assert 2.5 < time.monotonic() - started < 6
    sock.close()


def test_a_slow_body_gets_408(gateway: tuple[str, int]) -> None:
    _, port = gateway
    sock = connect(port)
    sock.sendall(
        b"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data;"
        b" boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
    )
    started = time.monotonic()
    answer = b""
    while b"\r\n\r\n" not in answer and time.monotonic() - started < 8:
        try:
            sock.sendall(b"x")  # a byte a second
        except OSError:
            break
        time.sleep(0.2)
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            answer += sock.recv(4096)
        sock.setblocking(True)

    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer or b"content-type: application/problem+json" in answer
    sock.close()


def test_unparsable_http_is_a_problem_with_the_security_headers(gateway: tuple[str, int]) -> None:
    _, port = gateway
    sock = connect(port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n")  # a header without its colon
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    sock.close()

    head, _, body = answer.partition(b"\r\n\r\n")
    headers = head.decode().lower()
    assert head.startswith(b"HTTP/1.1 400")
    assert "x-content-type-options: nosniff" in headers
    assert "content-type: application/problem+json" in headers
    assert json.loads(body)["code"] == "malformed_request"
