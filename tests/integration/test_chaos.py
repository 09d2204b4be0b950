"""SIGKILL of the gateway at random moments of concurrent creations and deletions: after a
restart and one sweep, every record has all its blobs, no blob lacks a record, and no analysis
whose creation was acknowledged is lost (nor one whose deletion was acknowledged back)."""

import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from branet_cli.stack import EMULATED_BUCKET, EMULATED_PROJECT, Ports, Stack
from branet_gateway.storage import BlobStore, ResultStore, blob_key
from branet_gateway.storage.firestore import FirestoreResultStore
from branet_gateway.storage.gcs import GCSBlobStore
from branet_gateway.storage.local import LocalBlobStore
from branet_gateway.storage.sqlite import SQLiteResultStore
from branet_shared.schemas import Analysis
from tests.images import gray_png
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration
CHAOS_ENV = {
    "GATEWAY_ORPHAN_GRACE_S": "0",  # nothing is in flight when the restarted gateway sweeps
    "GATEWAY_RATE_LIMIT_PER_USER": "100000/minute",
    "GATEWAY_RATE_LIMIT_PER_IP": "100000/minute",
    "GATEWAY_MAX_IN_FLIGHT_ANALYSES": "64",
}


@dataclass
class Acknowledged:
    created: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    # A deletion cut off by the kill may or may not have happened: either is right.
    delete_tried: set[str] = field(default_factory=set)


def make_stack(home: Path, model_dir: Path, emulated_cloud: bool) -> Stack:
    ports = Ports(*(free_port() for _ in range(5)))
    env = {"CLASSIFIER_MODEL_DIR": str(model_dir), "CLASSIFIER_TORCH_THREADS": "1", **CHAOS_ENV}
    return Stack(home, ports, env=env, emulated_cloud=emulated_cloud)


def create(url: str, n: int) -> str | None:
    fields = {"modality": "ultrasound", **({"box": "10,10,60,50"} if n % 2 else {})}
    try:
        response = httpx.post(
            f"{url}/v1/analyses",
            files={"file": ("scan.png", gray_png(seed=n), "image/png")},
            data=fields,
            timeout=30,
        )
    except httpx.HTTPError:
        return None
    return str(response.json()["id"]) if response.status_code == 201 else None


def delete(url: str, analysis_id: str) -> bool:
    try:
        return httpx.delete(f"{url}/v1/analyses/{analysis_id}", timeout=30).status_code == 204
    except httpx.HTTPError:
        return False


def sweeps(url: str) -> float:
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "branet_orphan_sweeps_total"
    )


def restart_after_one_sweep(stack: Stack) -> None:
    gateway = stack.services[-1]
    stack.stop(gateway)
    stack.start(gateway, timeout_s=60)
    deadline = time.monotonic() + 30
    while sweeps(gateway.url) < 1:
        assert time.monotonic() < deadline, "the restarted gateway did not sweep"
        time.sleep(0.1)


def chaos_round(stack: Stack, rng: random.Random, done: Acknowledged, first: int) -> None:
    """Eight concurrent operations, and a SIGKILL somewhere among them."""
    url = stack.services[-1].url
    deletable = sorted(done.created - done.delete_tried)
    victims = rng.sample(deletable, min(3, len(deletable)))
    done.delete_tried |= set(victims)
    with ThreadPoolExecutor(8) as pool:
        created = [pool.submit(create, url, first + n) for n in range(8 - len(victims))]
        deleted = {victim: pool.submit(delete, url, victim) for victim in victims}
        time.sleep(rng.uniform(0.02, 0.6))
        pid = stack.pid(stack.services[-1])
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        done.created |= {i for future in created if (i := future.result()) is not None}
        done.deleted |= {victim for victim, future in deleted.items() if future.result()}
    restart_after_one_sweep(stack)


async def all_records(results: ResultStore) -> list[Analysis]:
    records, cursor = [], None
    while True:
        page = await results.list("local", 100, cursor)
        records += page.items
        if page.next_cursor is None:
            return records
        cursor = page.next_cursor


async def has_blob(blobs: BlobStore, key: str) -> bool:
    try:
        await anext(blobs.stream(key))
    except Exception:
        return False
    return True


async def assert_whole(blobs: BlobStore, results: ResultStore, done: Acknowledged) -> None:
    records = await all_records(results)
    ids = {record.id for record in records}
    for record in records:
        for kind in ("image", "mask", "roi", "heatmap"):
            if record.blob(kind) is not None:
                assert await has_blob(blobs, blob_key("local", record.id, kind)), (record.id, kind)
    stored = {stored.analysis_id async for stored in blobs.analyses()}
    assert stored == ids  # no blob without its record, no record without its blobs
    assert done.created - done.delete_tried <= ids  # nothing acknowledged is lost
    assert not done.deleted & ids  # nothing acknowledged as deleted comes back
    assert len(done.created) >= 3  # the rounds did create analyses


@asynccontextmanager
async def local_stores(stack: Stack) -> AsyncIterator[tuple[BlobStore, ResultStore]]:
    results = await SQLiteResultStore.open(stack.home / "data" / "analyses.sqlite3")
    yield LocalBlobStore(stack.home / "data" / "blobs"), results
    await results.close()


@asynccontextmanager
async def emulated_stores(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[BlobStore, ResultStore]]:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{stack.emulators[1].port}")
    blobs = GCSBlobStore.connect(EMULATED_BUCKET, EMULATED_PROJECT, stack.emulators[0].url)
    results = FirestoreResultStore.connect(EMULATED_PROJECT, "(default)", "analyses", True)
    yield blobs, results
    await results.close()


@pytest.fixture
def running(request: pytest.FixtureRequest, model_dir: Path, tmp_path: Path) -> Iterator[Stack]:
    emulated = request.param == "emulated-cloud"
    if emulated:
        request.getfixturevalue("firestore_host")  # skipped (or failed in CI) without Node
    stack = make_stack(tmp_path / "chaos", model_dir, emulated)
    stack.up(timeout_s=120)
    yield stack
    stack.down()


@pytest.mark.parametrize(
    ("running", "rounds"), [("local", 20), ("emulated-cloud", 6)], indirect=["running"]
)
async def test_sigkill_during_writes_leaves_every_analysis_whole(
    running: Stack, rounds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng, done = random.Random(26), Acknowledged()

    for round_number in range(rounds):
        chaos_round(running, rng, done, first=round_number * 8)

    emulated = running.emulators[0] in running.services
    stores = emulated_stores(running, monkeypatch) if emulated else local_stores(running)
    async with stores as (blobs, results):
        await assert_whole(blobs, results, done)
