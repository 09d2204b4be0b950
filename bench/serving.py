"""Serving processes for the benchmarks: start one, time its cold start, load it, measure it.

Each server is a real process on a free loopback port, started the way its users start it.
`measure_server` gives what the suite reports for every contender alike: cold start (process
start to the first answer it can give), latency at concurrency 1 (p50/p95/p99), throughput and
latency at concurrency 16, the answer it gives for the bench image, and the peak memory of its
whole process tree (TorchServe is a Java frontend plus Python workers).
"""

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.timing import load_result

# A request, given a client: what each contender's HTTP API wants for one image.
Send = Callable[[httpx.AsyncClient], Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        tree.extend(frontier)
    return tree


def peak_rss_mib(pids: list[int]) -> float:
    """The sum of each process's peak resident memory (VmHWM)."""
    total = 0.0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:"))
    return total


@dataclass
class Server:
    """A server process: how to start it and how to ask it for one classification."""

    name: str
    command: list[str]
    url: str
    send: Send
    raw: "RawRequest"  # the same request, for the load generator
    answer: Callable[[httpx.Response], float]  # P(malignant) from a response
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    seen_pids: set[int] = field(default_factory=set)

    def start(self, log: Path, timeout_s: float = 300) -> float:
        """Start the process; seconds until it answers a classification."""
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {log}")
            try:
                if asyncio.run(self._try_once()):
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in {timeout_s:g} s; see {log}")

    async def _try_once(self) -> bool:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            response = await self.send(client)
            return bool(response.status_code < 300)

    def memory_mib(self) -> float:
        assert self.process is not None
        self.seen_pids.update(process_tree(self.process.pid))
        return peak_rss_mib(sorted(self.seen_pids))

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass(frozen=True)
class RawRequest:
    """One POST as bytes on the wire, encoded once: the load generator shares the two cores
    with the server under test, so it should spend as little of them as it can (httpx costs
    ~1-2 ms of CPU per request; this, a few microseconds)."""

    path: str
    body: bytes
    content_type: str

    def wire(self, host: str) -> bytes:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {self.content_type}"
            f"\r\nContent-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body


class RawConnection:
    """A keep-alive HTTP/1.1 connection that reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        await self.writer.drain()
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head.split(" ", 2)[1])
        if "transfer-encoding: chunked" in head:
            while size := int((await self.reader.readline()).strip(), 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readline()
        else:
            length = next(
                (
                    int(line.split(":")[1])
                    for line in head.splitlines()
                    if line.startswith("content-length:")
                ),
                0,
            )
            await self.reader.readexactly(length)
        if "connection: close" in head or "http/1.0" in head.split("\r\n", 1)[0]:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(server: Server, concurrency: int, total: int) -> dict[str, float]:
    """`total` requests from `concurrency` connections, each sending its next request when the
    last is answered: throughput and latency percentiles."""
    url = httpx.URL(server.url)
    host, port = url.host, url.port or 80
    request = server.raw.wire(f"{host}:{port}")
    latencies: list[float] = []
    failures = 0
    remaining = total

    async def worker() -> None:
        nonlocal failures, remaining
        connection = RawConnection(host, port)
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                status = await connection.send(request)
                latencies.append((time.perf_counter() - started) * 1000)
                failures += status >= 300
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return load_result(concurrency, latencies, failures, time.perf_counter() - started)


async def ask(server: Server) -> float:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        response = await server.send(client)
        response.raise_for_status()
        return server.answer(response)


def measure_server(
    server: Server, log: Path, requests: int, levels: tuple[int, ...] = (1, 16)
) -> dict[str, Any]:
    """Start, measure and stop one server."""
    try:
        cold_start_s = server.start(log)
        malignant = asyncio.run(ask(server))
        rows = [
            asyncio.run(load(server, concurrency, requests * max(1, concurrency // 8)))
            for concurrency in levels
        ]
        memory = server.memory_mib()
    finally:
        server.stop()
    return {
        "name": server.name,
        "cold_start_s": cold_start_s,
        "p_malignant": malignant,
        "load": rows,
        "peak_rss_mib": memory,
    }
