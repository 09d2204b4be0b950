"""The whole stack in emulated-cloud mode: images in (fake) GCS, results in (emulated)
Firestore, read back with the official clients; and what a GCS outage does."""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage  # type: ignore[attr-defined]

from branet_cli.stack import EMULATED_BUCKET, EMULATED_PROJECT, Ports, Stack
from tests.images import gray_png
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory, firestore_host: str
) -> Iterator[Stack]:
    # `firestore_host` only to skip (or fail in CI) when the emulator cannot run here.
    stack = Stack(
        tmp_path_factory.mktemp("emulated"),
        Ports(*(free_port() for _ in range(5))),
        env={"CLASSIFIER_MODEL_DIR": str(model_dir), "CLASSIFIER_TORCH_THREADS": "1"},
        emulated_cloud=True,
    )
    stack.up(timeout_s=120)
    yield stack
    stack.down()


def gateway_of(stack: Stack) -> str:
    return stack.services[-1].url


def bucket_keys(stack: Stack) -> list[str]:
    client = storage.Client(
        project=EMULATED_PROJECT,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": stack.emulators[0].url},
    )
    return sorted(blob.name for blob in client.list_blobs(EMULATED_BUCKET))


def firestore_documents(stack: Stack) -> dict[str, dict[str, object]]:
    # The client reads the emulator's address when it is built; other tests use another one.
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{stack.emulators[1].port}"
    try:
        client = firestore.Client(
            project=EMULATED_PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        )
    finally:
        if previous is None:
            del os.environ["FIRESTORE_EMULATOR_HOST"]
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
    return {doc.id: doc.to_dict() or {} for doc in client.collection("analyses").stream()}


def analyse(stack: Stack) -> httpx.Response:
    return httpx.post(
        f"{gateway_of(stack)}/v1/analyses",
        files={"file": ("scan.png", gray_png(), "image/png")},
        data={"modality": "ultrasound"},
        timeout=60,
    )


def test_analysis_lands_in_the_bucket_and_in_firestore(stack: Stack) -> None:
    created = analyse(stack)
    assert created.status_code == 201, created.text
    analysis = created.json()

    keys = bucket_keys(stack)
    documents = firestore_documents(stack)

    assert any(key.endswith(f"/{analysis['id']}/image") for key in keys)
    assert documents[analysis["id"]]["owner"] == "local"
    assert documents[analysis["id"]]["analysis"]["label"] == analysis["label"]  # type: ignore[index]
    image = httpx.get(f"{gateway_of(stack)}{analysis['image']['url']}")
    assert image.content == gray_png()

    assert httpx.delete(f"{gateway_of(stack)}/v1/analyses/{analysis['id']}").status_code == 204
    assert analysis["id"] not in firestore_documents(stack)
    assert not any(f"/{analysis['id']}/" in key for key in bucket_keys(stack))


def test_history_pages_through_25(stack: Stack) -> None:
    created = [analyse(stack).json()["id"] for _ in range(25)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(f"{gateway_of(stack)}/v1/analyses", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen[:25] == list(reversed(created))
    assert len(seen) == len(set(seen))


def test_gcs_outage_is_503_leaves_nothing_and_recovers(stack: Stack) -> None:
    gcs = stack.emulators[0]
    before = set(firestore_documents(stack))
    stack.stop(gcs)
    try:
        failed = analyse(stack)
    finally:
        stack.start(gcs, timeout_s=30)

    assert failed.status_code == 503
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["code"] == "store_unavailable"
    assert set(firestore_documents(stack)) == before

    recovered = analyse(stack)  # the same gateway process, no restart
    assert recovered.status_code == 201, recovered.text
