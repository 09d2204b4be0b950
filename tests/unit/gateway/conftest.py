"""The gateway wired to the real classifier and segmenter apps, in-process."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from branet_classifier.app import create_app as create_classifier_app
from branet_classifier.settings import ClassifierSettings
from branet_gateway.app import create_app as create_gateway_app
from branet_gateway.auth import User, current_user
from branet_gateway.settings import GatewaySettings
from branet_segmenter.app import create_app as create_segmenter_app
from branet_segmenter.settings import SegmenterSettings
from tests.conftest import Serve

Traces = Callable[[str], TracerProvider]


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    data_dir: Path
    model_services: dict[str, httpx.AsyncBaseTransport]

    def act_as(self, user_id: str | None) -> None:
        """Make later requests come from `user_id` (None: back to the local user)."""
        if user_id is None:
            self.app.dependency_overrides.pop(current_user, None)
        else:
            self.app.dependency_overrides[current_user] = lambda: User(id=user_id)

    def stored_files(self) -> list[Path]:
        """Every blob on disk (the store's own write check aside)."""
        blobs = self.data_dir / "blobs"
        return sorted(p for p in blobs.rglob("*") if p.is_file() and p.name != ".check")

    async def service_client(self, service: str) -> httpx.AsyncClient:
        """A client of the gateway (`gateway`) or of one of its model services."""
        if service == "gateway":
            return self.client
        transport = self.model_services[service]
        return httpx.AsyncClient(transport=transport, base_url=f"http://{service}")

    async def analyse(self, image: bytes, **fields: str) -> httpx.Response:
        return await self.client.post(
            "/v1/analyses",
            files={"file": ("scan.png", image, "image/png")},
            data={"modality": "ultrasound", **fields},
        )


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(
    serve: Serve, tmp_path: Path, model_dir: Path
) -> AsyncIterator[GatewayFactory]:
    clients: list[httpx.AsyncClient] = []

    async def make(
        *,
        models: Path = model_dir,
        data_dir: Path | None = None,
        sam_checkpoint: Path | None = None,
        traces: Traces | None = None,
        **settings: object,
    ) -> Gateway:
        """The stack with the given classifier models and, if any, a toy SAM checkpoint (else
        no segmenter); `settings` override the gateway's. `traces` gives each service (by
        name) its span provider."""

        def provider(service: str) -> TracerProvider | None:
            return traces(service) if traces else None

        classifier = await serve(
            create_classifier_app(
                ClassifierSettings(model_dir=models), traces=provider("classifier")
            )
        )
        # Without a toy checkpoint, no segmenter at all: not the shipped one either.
        sam = SegmenterSettings(
            model_type="toy", checkpoint=sam_checkpoint, model_card=tmp_path / "no-segmenter.json"
        )
        segmenter = await serve(create_segmenter_app(sam, traces=provider("segmenter")))
        gateway_settings = GatewaySettings.model_validate(
            {
                "data_dir": data_dir or tmp_path / "data",
                "classifier_url": "http://classifier",
                "segmenter_url": "http://segmenter",
                **settings,
            }
        )
        mounts = {"http://classifier": classifier, "http://segmenter": segmenter}
        app = create_gateway_app(gateway_settings, mounts=mounts, traces=provider("gateway"))
        client = httpx.AsyncClient(transport=await serve(app), base_url="http://gateway")
        clients.append(client)
        services = {"classifier": classifier, "segmenter": segmenter}
        return Gateway(app, client, gateway_settings.data_dir, services)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway()
