"""The stack as real processes on free loopback ports, as `branet up` starts it."""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from branet_cli.stack import Ports, Service, Stack, firestore_emulator_missing

pytestmark = pytest.mark.integration


def start_stack(home: Path, models: Path, **env: str) -> Stack:
    """The three services on free ports, as `branet up` starts them, with test models."""
    return Stack(
        home,
        Ports(free_port(), free_port(), free_port()),
        env={"CLASSIFIER_MODEL_DIR": str(models), "CLASSIFIER_TORCH_THREADS": "1", **env},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    stacks: list[Stack] = []

    def make(models: Path, home: Path | None = None, **env: str) -> Stack:
        stack = start_stack(home or tmp_path / "branet", models, **env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.down()


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The GCS and Firestore emulators, started as `branet up --emulated-cloud` starts them.

    Without Node (or its npm packages) the Firestore tests are skipped with a loud message,
    and fail in CI, which has both.
    """
    ports = Ports(*(free_port() for _ in range(5)))
    stack = Stack(tmp_path_factory.mktemp("cloud"), ports, emulated_cloud=True)
    yield stack
    stack.down()


@pytest.fixture(scope="session")
def gcs(emulators: Stack) -> Service:
    service = emulators.emulators[0]
    emulators.start(service, timeout_s=30)
    return service


@pytest.fixture(scope="session")
def firestore_host(emulators: Stack) -> Iterator[str]:
    """A running Firestore emulator; FIRESTORE_EMULATOR_HOST points at it meanwhile."""
    missing = firestore_emulator_missing()
    if missing is not None:
        message = f"FIRESTORE EMULATOR UNAVAILABLE: {missing}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    service = emulators.emulators[1]
    emulators.start(service, timeout_s=30)
    host = f"127.0.0.1:{service.port}"
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    yield host
    if previous is None:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
    else:
        os.environ["FIRESTORE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port (Debian's package; `make test` installs it)."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have redis-server: `make test` installs it")
        pytest.skip("redis-server is missing (apt-get install redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
