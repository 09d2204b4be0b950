"""Requests built to confuse the gateway: each is refused with a clear 4xx, and nothing stored."""

import time
from collections.abc import AsyncIterator

import numpy as np
from PIL import Image

from tests.images import encode, gray_png
from tests.unit.gateway.conftest import Gateway, GatewayFactory


async def test_a_field_sent_twice_is_refused(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/analyses",
        files=[
            ("file", ("report.pdf", b"%PDF-1.7\n", "application/pdf")),
            ("file", ("scan.png", gray_png(), "image/png")),
        ],
        data={"modality": "ultrasound"},
    )

    assert response.status_code == 422
    assert response.json()["detail"] == "file was sent more than once"
    assert gateway.stored_files() == []


async def test_a_huge_points_field_is_refused_at_once(gateway: Gateway) -> None:
    points = ";".join(["1,1,1"] * 200_000)  # ~1.2 MB

    started = time.perf_counter()
    response = await gateway.analyse(gray_png(), points=points)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"
    assert time.perf_counter() - started < 0.5


async def test_a_chunked_upload_over_the_cap_is_413(gateway: Gateway) -> None:
    boundary = "b0undary"

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="modality"\r\n\r\n'.encode()
        yield f"ultrasound\r\n--{boundary}\r\n".encode()
        yield b'Content-Disposition: form-data; name="file"; filename="x.png"\r\n'
        yield b"Content-Type: image/png\r\n\r\n"
        for _ in range(12):
            yield b"\0" * (1024 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await gateway.client.post(
        "/v1/analyses",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_errors_do_not_echo_the_input(gateway: Gateway) -> None:
    response = await gateway.analyse(gray_png(), box="50,50,10,10")

    detail = response.json()["detail"]
    assert response.status_code == 422
    assert detail == "box: a box needs x0 < x1 and y0 < y1"
    assert "http" not in detail


async def test_non_ascii_digits_are_not_numbers(gateway: Gateway) -> None:
    for box in ("١,٢,٣٠,٤٠", "1_0,1,20,20"):
        response = await gateway.analyse(gray_png(), box=box)
        assert response.status_code == 422, box


async def test_an_image_that_decodes_too_slowly_is_refused(make_gateway: GatewayFactory) -> None:
    # 6 MP of noise as a progressive JPEG: ~170 ms to decode on 2 vCPU.
    noise = np.random.default_rng(0).integers(0, 256, (2500, 2500), dtype=np.uint8)
    big = encode(Image.fromarray(noise), "JPEG", quality=90, progressive=True)
    gateway = await make_gateway(validate_timeout_s=0.01)

    response = await gateway.analyse(big)

    assert response.status_code == 422
    assert "did not decode within" in response.json()["detail"]
    assert gateway.stored_files() == []
    small = await gateway.analyse(gray_png(width=16, height=16))
    assert small.status_code == 201  # the pool lives on after a killed worker
