"""Idempotent creation: a client that lost the answer retries with its Idempotency-Key and
gets the analysis the first request made, never a second."""

import asyncio

from tests.images import gray_png
from tests.unit.gateway.conftest import Gateway


async def create(gateway: Gateway, key: str, image: bytes, **fields: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = await gateway.client.post(
        "/v1/analyses",
        files={"file": ("scan.png", image, "image/png")},
        data={"modality": "ultrasound", **fields},
        headers={"Idempotency-Key": key},
    )
    return response.status_code, {"body": response.json(), "headers": response.headers}


async def test_a_retry_with_the_same_key_returns_the_same_analysis(gateway: Gateway) -> None:
    first_status, first = await create(gateway, '"3f2c-retry"', gray_png())
    again_status, again = await create(gateway, '"3f2c-retry"', gray_png())

    assert (first_status, again_status) == (201, 201)
    assert again["body"]["id"] == first["body"]["id"]
    assert again["body"] == first["body"]
    assert again["headers"]["idempotent-replayed"] == "true"
    listed = (await gateway.client.get("/v1/analyses")).json()["items"]
    assert [a["id"] for a in listed] == [first["body"]["id"]]
    assert len(gateway.stored_files()) == 1


async def test_concurrent_retries_make_one_analysis(gateway: Gateway) -> None:
    answers = await asyncio.gather(*(create(gateway, "same", gray_png()) for _ in range(4)))

    assert {status for status, _ in answers} == {201}
    assert len({answer["body"]["id"] for _, answer in answers}) == 1
    assert len(gateway.stored_files()) == 1  # the losers' blobs are gone


async def test_the_same_key_with_another_request_is_422(gateway: Gateway) -> None:
    await create(gateway, "k1", gray_png())

    status, other = await create(gateway, "k1", gray_png(seed=3))
    status_fields, _ = await create(gateway, "k1", gray_png(), explain="true")

    assert (status, status_fields) == (422, 422)
    assert other["body"]["code"] == "idempotency_key_reused"
    assert len(gateway.stored_files()) == 1


async def test_keys_are_per_user(gateway: Gateway) -> None:
    _, mine = await create(gateway, "k", gray_png())
    gateway.act_as("someone-else")

    status, theirs = await create(gateway, "k", gray_png())

    assert status == 201
    assert theirs["body"]["id"] != mine["body"]["id"]


async def test_an_unprintable_key_is_refused(gateway: Gateway) -> None:
    status, answer = await create(gateway, '"\t"', gray_png())

    assert status == 422
    assert answer["body"]["code"] == "invalid_parameter"
