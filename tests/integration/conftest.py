"""The stack as real processes on free loopback ports, as `branet up` starts it."""

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from branet_cli.stack import Ports, Stack

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
