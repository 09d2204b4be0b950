"""The embedded stack as three local processes, with pid files and logs under one folder."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Ports:
    gateway: int = 8080
    segmenter: int = 8081
    classifier: int = 8082


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Stack:
    """The three services of one state folder (`.branet/` by default)."""

    def __init__(
        self, home: Path, ports: Ports = Ports(), env: dict[str, str] | None = None
    ) -> None:
        """`env` is added to every service's environment (e.g. CLASSIFIER_MODEL_DIR)."""
        self.home = home.resolve()
        self.env = env or {}
        data_dir = self.home / "data"
        segmenter = Service("segmenter", ports.segmenter, {"SEGMENTER_PORT": str(ports.segmenter)})
        classifier = Service(
            "classifier", ports.classifier, {"CLASSIFIER_PORT": str(ports.classifier)}
        )
        gateway = Service(
            "gateway",
            ports.gateway,
            {
                "GATEWAY_PORT": str(ports.gateway),
                "GATEWAY_DATA_DIR": str(data_dir),
                "GATEWAY_CLASSIFIER_URL": classifier.url,
                "GATEWAY_SEGMENTER_URL": segmenter.url,
            },
        )
        # Model services first, so the gateway's first readiness check can succeed.
        self.services = [segmenter, classifier, gateway]

    def pid_file(self, service: Service) -> Path:
        return self.home / "run" / f"{service.name}.pid"

    def log_file(self, service: Service) -> Path:
        return self.home / "logs" / f"{service.name}.log"

    def pid(self, service: Service) -> int | None:
        try:
            pid = int(self.pid_file(service).read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self, service: Service, timeout_s: float) -> None:
        if self.pid(service) is not None:
            return
        for folder in ("run", "logs"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        command = str(Path(sys.executable).parent / f"branet-{service.name}")
        with self.log_file(service).open("ab") as log:
            process = subprocess.Popen(
                [command],
                env={**os.environ, **self.env, **service.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file(service).write_text(str(process.pid))
        self._wait_alive(service, process, timeout_s)

    def _wait_alive(
        self, service: Service, process: subprocess.Popen[bytes], timeout_s: float
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited with {process.returncode}; see {self.log_file(service)}"
                )
            if probe(f"{service.url}/healthz") == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{service.name} did not start in {timeout_s:g} s")

    def up(self, timeout_s: float = 120.0) -> None:
        for service in self.services:
            self.start(service, timeout_s)

    def stop(self, service: Service, timeout_s: float = 25.0) -> None:
        pid = self.pid(service)
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)  # uvicorn finishes in-flight requests first
            deadline = time.monotonic() + timeout_s
            while self.pid(service) is not None and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            if self.pid(service) is not None:
                os.killpg(pid, signal.SIGKILL)
                _reap(pid)
        self.pid_file(service).unlink(missing_ok=True)

    def down(self) -> None:
        for service in reversed(self.services):
            self.stop(service)


def _reap(pid: int) -> None:
    """Collect a child we started ourselves, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def probe(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.HTTPError:
        return None
