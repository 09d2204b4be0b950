"""The classifier service's HTTP contract."""

import io
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from branet_classifier.app import create_app
from branet_classifier.model import ClassifierCard
from branet_classifier.settings import ClassifierSettings
from branet_shared.images import roi_crop
from branet_shared.schemas import BoundingBox
from tests.conftest import Serve
from tests.images import encode, gray_png


@pytest.fixture
async def client(serve: Serve, model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = await serve(create_app(ClassifierSettings(model_dir=model_dir)))
    async with httpx.AsyncClient(transport=transport, base_url="http://classifier") as client:
        yield client


@pytest.fixture
async def unready_client(serve: Serve, empty_model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = await serve(create_app(ClassifierSettings(model_dir=empty_model_dir)))
    async with httpx.AsyncClient(transport=transport, base_url="http://classifier") as client:
        yield client


async def classify(client: httpx.AsyncClient, image: bytes, modality: str) -> httpx.Response:
    return await client.post(
        "/v1/classify", files={"file": ("x", image)}, data={"modality": modality}
    )


async def test_classify_answers_label_and_probabilities(client: httpx.AsyncClient) -> None:
    response = await classify(client, gray_png(), "mammography")

    assert response.status_code == 200
    body = response.json()
    assert body["label"] in ("benign", "malignant")
    assert body["model"]["name"] == "test-resnet18-mammography"


async def classify_body(
    client: httpx.AsyncClient, image: bytes, path: str, explain: bool = False
) -> httpx.Response:
    """The image as the request body, as the gateway sends it."""
    return await client.post(
        path,
        content=image,
        params={"explain": str(explain).lower()},
        headers={"content-type": "application/octet-stream"},
    )


async def test_the_image_as_the_body_gets_the_multipart_answer(client: httpx.AsyncClient) -> None:
    image = gray_png()

    as_form = await classify(client, image, "ultrasound")
    as_body = await classify_body(client, image, "/v1/classify/ultrasound")

    assert as_body.status_code == 200
    assert as_body.json()["probabilities"] == as_form.json()["probabilities"]
    assert as_body.json()["model"] == as_form.json()["model"]


async def test_the_image_as_the_body_explains_on_request(client: httpx.AsyncClient) -> None:
    response = await classify_body(client, gray_png(), "/v1/classify/mammography", explain=True)

    assert response.status_code == 200
    assert response.json()["heatmap_png"]


@pytest.mark.parametrize(
    ("image", "path", "status", "code"),
    [
        (b"GIF89a....", "/v1/classify/ultrasound", 415, "unsupported_media_type"),
        (b"", "/v1/classify/ultrasound", 422, "invalid_image"),
        (gray_png(), "/v1/classify/x-ray", 422, None),
    ],
)
async def test_the_image_as_the_body_is_refused_with_a_problem(
    client: httpx.AsyncClient, image: bytes, path: str, status: int, code: str | None
) -> None:
    response = await classify_body(client, image, path)

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert response.json()["code"] == code


async def test_a_box_is_classified_as_the_crop_around_it(client: httpx.AsyncClient) -> None:
    image = Image.open(io.BytesIO(gray_png()))
    box = BoundingBox(x0=30, y0=24, x1=70, y1=56)
    crop = roi_crop(image, box, ClassifierCard.model_fields["roi_margin"].default)

    with_box = await client.post(
        "/v1/classify/ultrasound",
        content=gray_png(),
        params={"box": "30,24,70,56"},
        headers={"content-type": "application/octet-stream"},
    )
    cropped = await classify(client, encode(crop), "ultrasound")
    whole = await classify(client, gray_png(), "ultrasound")

    assert with_box.status_code == 200, with_box.text
    assert with_box.json()["probabilities"] == cropped.json()["probabilities"]
    assert with_box.json()["probabilities"] != whole.json()["probabilities"]


@pytest.mark.parametrize("box", ["0,0,97,80", "10,10,5,5", "a,b,c,d"])
async def test_a_box_that_does_not_fit_is_an_invalid_parameter(
    client: httpx.AsyncClient, box: str
) -> None:
    response = await client.post(
        "/v1/classify",
        files={"file": ("x", gray_png())},
        data={"modality": "ultrasound", "box": box},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"


async def test_ready_when_every_modality_is_loaded(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).json()["status"] == "ready"
    models = (await client.get("/v1/models")).json()
    assert {m["modality"] for m in models["models"]} == {"ultrasound", "mammography"}


async def test_without_models_alive_but_not_ready(unready_client: httpx.AsyncClient) -> None:
    assert (await unready_client.get("/healthz")).status_code == 200
    ready = await unready_client.get("/readyz")
    assert ready.status_code == 503
    assert "ultrasound.json" in ready.json()["checks"]["ultrasound"]["detail"]

    response = await classify(unready_client, gray_png(), "ultrasound")

    assert response.status_code == 503
    assert response.json()["code"] == "model_unavailable"


async def test_bad_image_is_refused(client: httpx.AsyncClient) -> None:
    response = await classify(client, b"GIF89a....", "ultrasound")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


async def test_a_tampered_model_file_makes_the_service_not_ready(
    serve: Serve, model_dir: Path, tmp_path: Path
) -> None:
    tampered = tmp_path / "models"
    shutil.copytree(model_dir, tampered)
    weights = tampered / "mammography.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    transport = await serve(create_app(ClassifierSettings(model_dir=tampered)))

    async with httpx.AsyncClient(transport=transport, base_url="http://classifier") as client:
        ready = await client.get("/readyz")
        ultrasound = await classify(client, gray_png(), "ultrasound")
        mammography = await classify(client, gray_png(), "mammography")

    assert ready.status_code == 503
    assert "SHA-256" in ready.json()["checks"]["mammography"]["detail"]
    assert ultrasound.status_code == 200
    assert mammography.status_code == 503
    assert mammography.json()["code"] == "model_unavailable"
