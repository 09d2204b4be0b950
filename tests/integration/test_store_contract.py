"""One contract for every store implementation: the embedded ones (local folder, SQLite) and
the cloud ones against real emulator servers (fake-gcs-server, the Node Firestore emulator).

What the Firestore emulator cannot prove: it enforces no composite indexes (real Firestore
needs the one in infra/firestore.indexes.json for the list query), and it ignores
`start_after`/offsets — which is why paging is a range filter on `sort_key`, exercised here.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from branet_classifier.app import classifier_tasks
from branet_classifier.app import create_app as create_classifier_app
from branet_classifier.settings import ClassifierSettings
from branet_cli.stack import EMULATED_BUCKET, Service
from branet_gateway.app import create_app as create_gateway_app
from branet_gateway.settings import GatewaySettings
from branet_gateway.storage import (
    BlobNotFound,
    BlobStore,
    PageCursor,
    ResultStore,
    analysis_prefix,
    blob_key,
)
from branet_gateway.storage.base import BlobKind, IdempotencyKey, KeyAlreadyUsed, KeyedAnalysis
from branet_gateway.storage.firestore import FirestoreResultStore
from branet_gateway.storage.gcs import GCSBlobStore
from branet_gateway.storage.local import LocalBlobStore
from branet_gateway.storage.sqlite import SQLiteResultStore
from branet_segmenter.segment import SegmenterTask
from branet_segmenter.settings import SegmenterSettings
from branet_shared.errors import NotFound, StoreUnavailable
from branet_shared.schemas import Analysis, Modality
from tests.conftest import Serve
from tests.factories import make_analysis
from tests.images import gray_png
from tests.models import loaded_runtime

pytestmark = pytest.mark.integration
KINDS: tuple[BlobKind, ...] = ("image", "mask", "roi")
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


def analysis(index: int, owner: str, *, same_time: bool = False) -> Analysis:
    return make_analysis(index, owner, same_time=same_time)


@pytest.fixture(params=["sqlite", "firestore"])
async def results(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResultStore]:
    store: ResultStore
    if request.param == "sqlite":
        store = await SQLiteResultStore.open(tmp_path / "r.sqlite3")
    else:
        request.getfixturevalue("firestore_host")
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        client = firestore.AsyncClient(project="demo", credentials=anonymous)
        store = FirestoreResultStore(client, collection=f"analyses-{uuid.uuid4().hex[:8]}")
    yield store
    await store.close()


@pytest.fixture(params=["local", "gcs"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    gcs: Service = request.getfixturevalue("gcs")
    return GCSBlobStore.connect(EMULATED_BUCKET, "demo", gcs.url)


def owner() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_create_then_get(results: ResultStore) -> None:
    alice = owner()
    await results.add(analysis(1, alice))

    assert await results.get(alice, analysis(1, alice).id) == analysis(1, alice)


async def test_missing_is_not_found(results: ResultStore) -> None:
    with pytest.raises(NotFound):
        await results.get(owner(), uuid.uuid4().hex)
    with pytest.raises(NotFound):
        await results.delete(owner(), uuid.uuid4().hex)


async def test_another_owners_document_is_invisible(results: ResultStore) -> None:
    alice, mallory = owner(), owner()
    await results.add(analysis(2, alice))

    with pytest.raises(NotFound):
        await results.get(mallory, analysis(2, alice).id)
    with pytest.raises(NotFound):
        await results.delete(mallory, analysis(2, alice).id)
    assert (await results.list(mallory, 10, None)).items == []
    assert (await results.get(alice, analysis(2, alice).id)).owner == alice


@pytest.mark.parametrize("same_time", [False, True], ids=["distinct-times", "tied-times"])
async def test_pages_newest_first_without_gaps(results: ResultStore, same_time: bool) -> None:
    alice, bob = owner(), owner()
    for index in range(25):
        await results.add(analysis(index, alice, same_time=same_time))
    await results.add(analysis(100, bob))

    seen, sizes, cursor = [], [], None
    while True:
        page = await results.list(alice, 10, cursor)
        sizes.append(len(page.items))
        seen += [item.id for item in page.items]
        if page.next_cursor is None:
            break
        cursor = PageCursor.decode(page.next_cursor.encode())

    assert sizes == [10, 10, 5]
    expected = sorted(
        (analysis(i, alice, same_time=same_time) for i in range(25)),
        key=lambda a: (a.created_at, a.id),
        reverse=True,
    )
    assert seen == [a.id for a in expected]


async def test_an_exactly_full_last_page_has_no_next_cursor(results: ResultStore) -> None:
    alice = owner()
    for index in range(10):
        await results.add(analysis(index, alice))

    assert (await results.list(alice, 10, None)).next_cursor is None


async def test_delete_removes_the_record(results: ResultStore) -> None:
    alice = owner()
    await results.add(analysis(3, alice))
    await results.delete(alice, analysis(3, alice).id)

    with pytest.raises(NotFound):
        await results.get(alice, analysis(3, alice).id)


async def test_concurrent_writes_all_land(results: ResultStore) -> None:
    alice = owner()
    await asyncio.gather(*(results.add(analysis(i, alice)) for i in range(30)))

    assert len((await results.list(alice, 100, None)).items) == 30


async def test_ten_megabyte_blob_round_trip(blobs: BlobStore) -> None:
    data = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    key = blob_key(owner(), uuid.uuid4().hex, "image")

    await blobs.put(key, data, "image/png")

    assert b"".join([chunk async for chunk in blobs.stream(key)]) == data


async def test_missing_blob_is_not_found(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        async for _ in blobs.stream(blob_key(owner(), uuid.uuid4().hex, "mask")):
            pass


async def test_delete_prefix_removes_one_analysis(blobs: BlobStore) -> None:
    alice, first, second = owner(), uuid.uuid4().hex, uuid.uuid4().hex
    for analysis_id in (first, second):
        for kind in KINDS:
            await blobs.put(blob_key(alice, analysis_id, kind), b"x", "image/png")

    assert await blobs.delete_prefix(analysis_prefix(alice, first)) == 3
    assert await blobs.delete_prefix(analysis_prefix(alice, first)) == 0
    assert b"".join([c async for c in blobs.stream(blob_key(alice, second, "roi"))]) == b"x"


@pytest.mark.parametrize("blob_backend", ["local", "gcs"])
@pytest.mark.parametrize("result_backend", ["sqlite", "firestore"])
async def test_gateway_writes_all_or_nothing(
    request: pytest.FixtureRequest,
    serve: Serve,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    blob_backend: str,
    result_backend: str,
) -> None:
    """The record write fails after the blobs were written: no blob may remain."""
    gcs: Service | None = request.getfixturevalue("gcs") if blob_backend == "gcs" else None
    if result_backend == "firestore":
        request.getfixturevalue("firestore_host")
    classifier = await serve(create_classifier_app(ClassifierSettings(model_dir=model_dir)))
    settings = GatewaySettings(
        data_dir=tmp_path,
        blob_backend=blob_backend,
        result_backend=result_backend,
        gcs_bucket=EMULATED_BUCKET,
        gcs_endpoint=gcs.url if gcs else None,
        gcp_project="demo",
        firestore_collection=f"analyses-{uuid.uuid4().hex[:8]}",
        classifier_url="http://classifier",
    )
    app = create_gateway_app(settings, mounts={"http://classifier": classifier})
    store = SQLiteResultStore if result_backend == "sqlite" else FirestoreResultStore

    async def disk_full(*_: object) -> None:
        raise StoreUnavailable("the result store is unavailable (test)")

    monkeypatch.setattr(store, "add", disk_full)
    async with httpx.AsyncClient(transport=await serve(app), base_url="http://gw") as client:
        response = await client.post(
            "/v1/analyses", files={"file": ("a.png", gray_png())}, data={"modality": "ultrasound"}
        )
        listed = (await client.get("/v1/analyses")).json()["items"]

    assert response.status_code == 503
    assert response.json()["code"] == "store_unavailable"
    assert listed == []
    blobs = (
        [b.name for b in GCSBlobStore.connect(EMULATED_BUCKET, "demo", gcs.url).bucket.list_blobs()]
        if gcs
        else [p for p in (tmp_path / "blobs").rglob("*") if p.is_file() and p.name != ".check"]
    )
    owner_prefix = analysis_prefix("local", "0" * 32).split("/")[1]
    assert not [b for b in blobs if owner_prefix in str(b)]


def test_model_files_load_from_gs_uris(
    gcs: Service,
    sam_checkpoint: Path,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SEGMENTER_CHECKPOINT and CLASSIFIER_MODEL_DIR as gs:// URIs, fetched at start-up."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    bucket = GCSBlobStore.connect(EMULATED_BUCKET, "demo", gcs.url).bucket
    bucket.blob("sam/toy.pth").upload_from_filename(str(sam_checkpoint))
    for path in model_dir.iterdir():
        bucket.blob(f"classifier/{path.name}").upload_from_filename(str(path))

    segmenter = loaded_runtime(
        "segmenter",
        [
            SegmenterTask(
                SegmenterSettings(
                    model_type="toy",
                    checkpoint=f"gs://{EMULATED_BUCKET}/sam/toy.pth",
                    cache_dir=tmp_path / "cache",
                )
            )
        ],
    )
    classifier = loaded_runtime(
        "classifier",
        classifier_tasks(
            ClassifierSettings(
                model_dir=f"gs://{EMULATED_BUCKET}/classifier/", cache_dir=tmp_path / "cache"
            )
        ),
    )

    assert not segmenter.missing, segmenter.missing
    assert not classifier.missing, classifier.missing
    assert {model.modality for model in classifier.models().models} == set(Modality)
    missing = loaded_runtime(
        "segmenter",
        [
            SegmenterTask(
                SegmenterSettings(
                    checkpoint=f"gs://{EMULATED_BUCKET}/nope.pth", cache_dir=tmp_path / "c2"
                )
            )
        ],
    )
    assert "cannot fetch" in missing.missing["sam"]


async def test_an_idempotency_key_holds_one_analysis(results: ResultStore) -> None:
    alice, bob = owner(), owner()
    key = IdempotencyKey("retry-me", "fingerprint-1")
    await results.add(analysis(1, alice), key)

    with pytest.raises(KeyAlreadyUsed):
        await results.add(analysis(2, alice), IdempotencyKey("retry-me", "fingerprint-2"))
    await results.add(analysis(3, bob), key)  # keys are the owner's own

    first = analysis(1, alice).id
    assert await results.keyed(alice, "retry-me") == KeyedAnalysis("fingerprint-1", first)
    with pytest.raises(NotFound):
        await results.get(alice, analysis(2, alice).id)  # the refused write left nothing
    assert await results.keyed(alice, "never-used") is None


async def test_blob_stores_list_each_analysis_with_its_age(blobs: BlobStore) -> None:
    alice, ids = owner(), [uuid.uuid4().hex for _ in range(2)]
    for analysis_id in ids:
        for kind in ("image", "mask"):
            await blobs.put(blob_key(alice, analysis_id, kind), b"bytes", "image/png")

    found = {stored.analysis_id: stored async for stored in blobs.analyses()}

    assert set(ids) <= set(found)
    assert found[ids[0]].prefix == analysis_prefix(alice, ids[0])
    assert abs(found[ids[0]].newest - datetime.now(UTC)) < timedelta(minutes=5)


async def test_exists_finds_a_record_whoever_owns_it(results: ResultStore) -> None:
    await results.add(analysis(7, owner()))

    assert await results.exists(analysis(7, "anyone").id)
    assert not await results.exists(analysis(8, "anyone").id)
