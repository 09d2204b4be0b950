"""The model-service factory: a third model service made of a tiny task class and its settings
gets health, readiness, `/v1/models` and bounded concurrency without writing any of them."""

import asyncio
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from branet_runtime.files import sha256_of_file, verify_file
from branet_runtime.service import ModelServiceSettings, RuntimeDep, create_model_service
from branet_shared.schemas import ModelInfo
from tests.conftest import Serve


class EchoSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ECHO_")

    weights: Path
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class EchoTask:
    """A 'model' that upper-cases text after a pause, from a weights file pinned by SHA-256;
    it counts how many of its runs overlap."""

    def __init__(self, settings: EchoSettings) -> None:
        self.settings = settings
        self.warmed = False
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    @property
    def check(self) -> str:
        return "echo"

    @property
    def title(self) -> str:
        return "echo model"

    def load(self) -> None:
        verify_file(self.settings.weights, self.settings.weights_sha256, "weights file")

    def warm_up(self) -> None:
        self.warmed = True

    def run(self, text: str) -> str:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.05)
        with self._lock:
            self.running -= 1
        return text.upper()

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name="echo",
            version="1",
            task="classification",  # the schema knows the two kinds BraNet serves
            architecture="upper-case",
            sha256=self.settings.weights_sha256,
            runtime="python",
        )


router = APIRouter()


@router.get("/v1/echo")
async def echo(runtime: RuntimeDep, text: Annotated[str, Query()]) -> dict[str, str]:
    task = runtime.task("echo", EchoTask)
    return {"echo": await runtime.run(task.run, text)}


def create_echo_app(settings: EchoSettings, task: EchoTask) -> FastAPI:
    return create_model_service(
        settings, [task], [router], service="echo", title="Echo", description="Echoes, loudly."
    )


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "echo.bin"
    path.write_bytes(b"weights")
    return path


async def started(serve: Serve, settings: EchoSettings, task: EchoTask) -> httpx.AsyncClient:
    transport = await serve(create_echo_app(settings, task))
    return httpx.AsyncClient(transport=transport, base_url="http://echo")


async def test_a_loaded_task_is_ready_listed_and_served(serve: Serve, weights: Path) -> None:
    settings = EchoSettings(weights=weights, weights_sha256=sha256_of_file(weights))
    task = EchoTask(settings)
    async with await started(serve, settings, task) as client:
        health = (await client.get("/healthz")).json()
        ready = await client.get("/readyz")
        models = (await client.get("/v1/models")).json()
        answer = await client.get("/v1/echo", params={"text": "hi"})

    assert health["service"] == "echo"
    assert ready.status_code == 200
    assert ready.json()["checks"]["echo"]["ok"] is True
    assert [model["name"] for model in models["models"]] == ["echo"]
    assert models["unavailable"] == []
    assert task.warmed
    assert answer.json() == {"echo": "HI"}


async def test_a_tampered_model_file_leaves_it_alive_unready_and_says_why(
    serve: Serve, weights: Path
) -> None:
    settings = EchoSettings(weights=weights, weights_sha256="0" * 64)
    async with await started(serve, settings, EchoTask(settings)) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        models = (await client.get("/v1/models")).json()
        answer = await client.get("/v1/echo", params={"text": "hi"})

    assert health.status_code == 200
    assert ready.status_code == 503
    assert "SHA-256" in ready.json()["checks"]["echo"]["detail"]
    assert models["models"] == []
    assert models["unavailable"][0]["name"] == "echo model"
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "model_unavailable"
    assert "echo model is unavailable" in answer.json()["detail"]


@pytest.mark.parametrize("bound", [1, 2])
async def test_runs_beyond_the_concurrency_bound_wait_their_turn(
    serve: Serve, weights: Path, bound: int
) -> None:
    settings = EchoSettings(
        weights=weights, weights_sha256=sha256_of_file(weights), max_concurrency=bound
    )
    task = EchoTask(settings)
    async with await started(serve, settings, task) as client:
        answers = await asyncio.gather(
            *(client.get("/v1/echo", params={"text": str(i)}) for i in range(6))
        )

    assert all(answer.status_code == 200 for answer in answers)
    assert task.most_at_once == bound
