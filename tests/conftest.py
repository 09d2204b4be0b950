"""Fixtures shared by every test: images, tiny real models, and the services wired in-process."""

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.images import gray_png

# Compiling a model costs 15-30 s of start-up: every service started by a test (in-process or
# as a process, which inherits this) runs eager; tests/unit/classifier covers the compiled path.
os.environ.setdefault("CLASSIFIER_COMPILE", "false")
os.environ.setdefault("SEGMENTER_COMPILE", "false")


@pytest.fixture
def png_bytes() -> bytes:
    return gray_png()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both modalities' classifiers: torchvision ResNet18s with seeded random weights."""
    from tests.models import write_classifier

    folder = tmp_path_factory.mktemp("models")
    for seed, modality in enumerate(("ultrasound", "mammography")):
        write_classifier(folder, modality, seed=seed)
    return folder


@pytest.fixture(scope="session")
def sam_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy SAM checkpoint: the package's classes, small dims, seeded random weights."""
    from tests.models import write_toy_sam

    return write_toy_sam(tmp_path_factory.mktemp("sam"))


@pytest.fixture
def failing_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile as on a machine without a C++ compiler: the compiled model raises."""
    import torch

    def compile_without_compiler(module: object, **_: object) -> object:
        def fail(*args: object) -> None:
            raise RuntimeError("no C++ compiler")

        return fail

    monkeypatch.setattr(torch, "compile", compile_without_compiler)


@pytest.fixture
def empty_model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "no-models"
    folder.mkdir()
    return folder


Serve = Callable[[FastAPI], Awaitable[httpx.AsyncBaseTransport]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Run apps' lifespans and hand back an in-process transport for each; stop them after."""
    async with AsyncExitStack() as stack:

        async def start(app: FastAPI) -> httpx.AsyncBaseTransport:
            manager = await stack.enter_async_context(LifespanManager(app, startup_timeout=60))
            return httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)

        yield start
    forget_fastapi_endpoints()


def forget_fastapi_endpoints() -> None:
    """FastAPI classifies endpoints in module-level lru_caches (4096 each) keyed by the
    endpoint function, whose closure holds its app: a run that builds hundreds of apps kept
    every one alive, with its models (23 GB, and the OOM killer). One app per process in
    production never notices; tests let go of each app this way."""
    import sys

    for name, module in list(sys.modules.items()):
        if name.startswith("fastapi") and module is not None:
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()
    import fastapi.routing

    fastapi.routing._endpoint_context_cache.clear()
