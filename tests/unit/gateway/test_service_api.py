"""Health, readiness, models, docs, and what the gateway says when a model service is down."""

from pathlib import Path

import httpx

from branet_gateway.app import create_app
from branet_gateway.settings import GatewaySettings
from tests.conftest import Serve
from tests.images import gray_png
from tests.unit.gateway.conftest import Gateway, GatewayFactory


async def test_ready_when_stores_and_classifier_are(gateway: Gateway) -> None:
    assert (await gateway.client.get("/healthz")).json()["status"] == "alive"

    response = await gateway.client.get("/readyz")

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["result_store"]["ok"]
    assert checks["blob_store"]["ok"]
    assert checks["classifier"]["ok"]
    # No SAM here: reported, not required.
    assert checks["segmenter"] == {"ok": False, "detail": checks["segmenter"]["detail"]}
    assert "SAM checkpoint" in checks["segmenter"]["detail"]


async def test_not_ready_without_classifier_models(
    make_gateway: GatewayFactory, empty_model_dir: Path
) -> None:
    gateway = await make_gateway(models=empty_model_dir)

    response = await gateway.client.get("/readyz")

    assert response.status_code == 503
    assert "ultrasound.json" in response.json()["checks"]["classifier"]["detail"]


async def test_models_lists_loaded_and_unavailable(gateway: Gateway) -> None:
    body = (await gateway.client.get("/v1/models")).json()

    assert {m["name"] for m in body["models"]} == {
        "test-resnet18-ultrasound",
        "test-resnet18-mammography",
    }
    assert [u["service"] for u in body["unavailable"]] == ["segmenter"]


async def test_unreachable_classifier_is_503_without_internals(
    serve: Serve, tmp_path: Path
) -> None:
    settings = GatewaySettings(
        data_dir=tmp_path,
        classifier_url="http://127.0.0.1:9",
        segmenter_url="http://127.0.0.1:9",
        model_retries=1,
    )
    transport = await serve(create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post(
            "/v1/analyses",
            files={"file": ("a.png", gray_png())},
            data={"modality": "ultrasound"},
        )
        ready = await client.get("/readyz")

    assert response.status_code == 503
    problem = response.json()
    assert problem["code"] == "model_unavailable"
    assert "127.0.0.1" not in response.text
    assert ready.status_code == 503


async def test_docs_page_uses_only_local_assets(gateway: Gateway) -> None:
    page = await gateway.client.get("/docs")

    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static-offline-docs/{asset}" in page.text
        served = await gateway.client.get(f"/static-offline-docs/{asset}")
        assert served.status_code == 200
        assert len(served.content) > 10_000


async def test_openapi_documents_the_public_api(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()

    paths = spec["paths"]
    assert {"post", "get"} <= set(paths["/v1/analyses"])
    assert {"get", "delete"} <= set(paths["/v1/analyses/{analysis_id}"])
    for kind in ("image", "mask", "roi", "heatmap"):
        assert f"/v1/analyses/{{analysis_id}}/{kind}" in paths
    assert (
        "application/problem+json" in paths["/v1/analyses"]["post"]["responses"]["415"]["content"]
    )


async def test_unknown_route_and_method_are_problems(gateway: Gateway) -> None:
    missing = await gateway.client.get("/v2/nothing")
    wrong = await gateway.client.put("/v1/analyses")

    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
