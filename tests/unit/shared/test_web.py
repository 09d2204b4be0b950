"""What every service's app does to every answer, whatever went wrong."""

import httpx
import pytest
from fastapi import FastAPI

from branet_shared.metrics import ServiceMetrics
from branet_shared.web import create_service_app


@pytest.fixture
def failing_app() -> FastAPI:
    app = create_service_app(
        title="test",
        description="",
        lifespan=None,  # type: ignore[arg-type]  # no state needed
        max_body_bytes=1024,
        metrics=ServiceMetrics("test"),
        tracer_provider=None,
    )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug, with internals: /srv/secret")

    return app


async def test_an_unexpected_error_is_a_bare_500_with_the_security_headers(
    failing_app: FastAPI,
) -> None:
    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["cache-control"] == "no-store"
