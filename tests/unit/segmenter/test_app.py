"""The segmenter's HTTP contract, with a toy SAM checkpoint through the real loading path."""

import base64
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from branet_segmenter.app import create_app
from branet_segmenter.settings import SegmenterSettings
from tests.conftest import Serve
from tests.images import decode_rle, gray_png

ClientFactory = Callable[[SegmenterSettings], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_client(serve: Serve) -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    async def make(settings: SegmenterSettings) -> httpx.AsyncClient:
        transport = await serve(create_app(settings))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://segmenter"))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: ClientFactory, sam_checkpoint: Path) -> httpx.AsyncClient:
    return await make_client(
        SegmenterSettings(model_type="toy", checkpoint=sam_checkpoint, auto_points_per_side=8)
    )


async def segment(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    return await client.post(
        "/v1/segment",
        files={"file": ("scan.png", gray_png())},
        data={"modality": "ultrasound", **fields},
    )


async def test_box_prompt_returns_mask_box_and_crop(client: httpx.AsyncClient) -> None:
    response = await segment(client, box="20,20,70,60")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["lesion_found"] is True
    assert body["model"]["name"] == "sam_toy"
    mask_png = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"])))) > 0
    rle = decode_rle(body["mask"]["size"], body["mask"]["counts"])
    assert (rle == mask_png).all()
    assert int(rle.sum()) == body["area"]
    box = body["bbox"]
    assert rle[box["y0"] : box["y1"], box["x0"] : box["x1"]].sum() == body["area"]
    crop = Image.open(io.BytesIO(base64.b64decode(body["roi_png"])))
    assert crop.width >= box["x1"] - box["x0"]


async def test_point_prompt_is_prompted_mode(client: httpx.AsyncClient) -> None:
    response = await segment(client, points="48,40,1")

    assert response.status_code == 200
    assert response.json()["lesion_found"] is True


async def test_automatic_mode_answers_found_or_not_found(client: httpx.AsyncClient) -> None:
    response = await segment(client)

    assert response.status_code == 200
    body = response.json()
    # Random weights propose nothing lesion-like: said so, not an error, no fake mask.
    assert body["lesion_found"] is False
    assert body["mask"] is None


@pytest.mark.parametrize("box", ["0,0,97,80", "90,70,200,300"])
async def test_box_outside_the_image_is_422(client: httpx.AsyncClient, box: str) -> None:
    response = await segment(client, box=box)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"


async def test_ready_with_a_checkpoint(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).status_code == 200
    models = (await client.get("/v1/models")).json()["models"]
    assert models[0]["name"] == "sam_toy"
    assert len(models[0]["sha256"]) == 64


async def test_without_any_model_not_ready_and_names_the_settings(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """No checkpoint, and no card of BraNet's own at SEGMENTER_MODEL_CARD."""
    client = await make_client(
        SegmenterSettings(checkpoint=None, model_card=tmp_path / "segmenter.json")
    )

    ready = await client.get("/readyz")
    response = await segment(client, box="20,20,70,60")

    assert ready.status_code == 503
    assert response.status_code == 503
    assert response.json()["code"] == "model_unavailable"
    assert "SEGMENTER_CHECKPOINT" in response.json()["detail"]
    assert "no model card at" in response.json()["detail"]


async def test_wrong_checkpoint_is_not_ready_with_reason(
    make_client: ClientFactory, sam_checkpoint: Path
) -> None:
    client = await make_client(SegmenterSettings(model_type="vit_b", checkpoint=sam_checkpoint))

    ready = (await client.get("/readyz")).json()

    assert ready["status"] == "not_ready"
    assert "official vit_b" in ready["checks"]["sam"]["detail"]


def test_a_blank_checkpoint_setting_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTER_CHECKPOINT", "")

    assert SegmenterSettings().checkpoint is None
