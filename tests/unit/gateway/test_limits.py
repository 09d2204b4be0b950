"""Abuse limits and response headers: rate limits, shedding under overload, security headers,
CORS."""

import asyncio

import pytest

from branet_gateway.admission import AdmissionControl
from branet_gateway.metrics import GatewayMetrics
from branet_shared.errors import Overloaded, RateLimited
from tests.images import gray_png
from tests.unit.gateway.conftest import Gateway, GatewayFactory


async def test_rate_limit_per_user_answers_429_with_retry_after(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(rate_limit_per_user="3/minute")

    answers = [await gateway.analyse(gray_png()) for _ in range(5)]

    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert len(gateway.stored_files()) == 3


async def test_rate_limit_per_address(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(rate_limit_per_user="100/minute", rate_limit_per_ip="2/minute")

    codes = [(await gateway.analyse(gray_png())).status_code for _ in range(3)]

    assert codes == [201, 201, 429]


async def test_overload_is_shed_with_503_and_nothing_half_written(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(
        max_in_flight_analyses=1, rate_limit_per_user="1000/minute", rate_limit_per_ip="1000/minute"
    )

    answers = await asyncio.gather(*(gateway.analyse(gray_png()) for _ in range(12)))

    codes = [a.status_code for a in answers]
    assert set(codes) <= {201, 503}
    assert 503 in codes
    assert 201 in codes
    shed = next(a for a in answers if a.status_code == 503)
    assert shed.json()["code"] == "overloaded"
    assert shed.headers["retry-after"]
    stored = (await gateway.client.get("/v1/analyses", params={"limit": 100})).json()["items"]
    assert len(stored) == codes.count(201) == len(gateway.stored_files())


async def test_admission_slots_are_released() -> None:
    admission = AdmissionControl("10/minute", "10/minute", 1, GatewayMetrics())

    async with admission.admit("a", "10.0.0.1"):
        with pytest.raises(Overloaded):
            async with admission.admit("a", "10.0.0.1"):
                pass
    async with admission.admit("a", "10.0.0.1"):
        assert admission.in_flight == 1
    assert admission.in_flight == 0


async def test_shed_requests_are_not_charged_to_the_rate_limit() -> None:
    admission = AdmissionControl("2/minute", "100/minute", 1, GatewayMetrics())

    async with admission.admit("a", "10.0.0.1"):
        for _ in range(5):  # all shed: the one slot is taken
            with pytest.raises(Overloaded):
                async with admission.admit("a", "10.0.0.1"):
                    pass
    async with admission.admit("a", "10.0.0.1"):  # the second of two allowed
        pass
    with pytest.raises(RateLimited):
        async with admission.admit("a", "10.0.0.1"):
            pass


async def test_a_forged_forwarded_for_is_limited_like_any_other(
    make_gateway: GatewayFactory,
) -> None:
    """Behind one trusted hop, the proxy appends the real address; what the client wrote to
    its left changes nothing."""
    gateway = await make_gateway(
        proxy_hops=1, rate_limit_per_user="1000/minute", rate_limit_per_ip="3/minute"
    )

    async def forged(n: int) -> int:
        headers = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.7"}
        response = await gateway.client.post(
            "/v1/analyses",
            files={"file": ("scan.png", gray_png(), "image/png")},
            data={"modality": "ultrasound"},
            headers=headers,
        )
        return response.status_code

    codes = [await forged(n) for n in range(6)]
    other = await gateway.client.post(
        "/v1/analyses",
        files={"file": ("scan.png", gray_png(), "image/png")},
        data={"modality": "ultrasound"},
        headers={"X-Forwarded-For": "203.0.113.8"},
    )

    assert codes == [201, 201, 201, 429, 429, 429]
    assert other.status_code == 201  # another client, by the address the proxy appended


@pytest.mark.parametrize("path", ["/v1/analyses", "/v1/analyses/nope", "/healthz"])
async def test_security_headers_on_every_answer(gateway: Gateway, path: str) -> None:
    response = await gateway.client.get(path)

    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" in headers


async def test_cors_is_off_by_default(gateway: Gateway) -> None:
    response = await gateway.client.options(
        "/v1/analyses",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_only_listed_origins(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(cors_origins=["https://app.branet.example"])
    preflight = {"Access-Control-Request-Method": "POST"}

    allowed = await gateway.client.options(
        "/v1/analyses", headers={"Origin": "https://app.branet.example", **preflight}
    )
    other = await gateway.client.options(
        "/v1/analyses", headers={"Origin": "https://evil.example", **preflight}
    )

    assert allowed.headers["access-control-allow-origin"] == "https://app.branet.example"
    assert "access-control-allow-origin" not in other.headers
