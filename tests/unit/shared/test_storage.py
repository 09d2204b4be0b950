"""The embedded stores: a local folder for blobs, SQLite for results."""

import asyncio
from pathlib import Path
from typing import get_args

import pytest

from branet_shared.errors import InvalidParameter, NotFound
from branet_shared.storage import BlobNotFound, PageCursor, analysis_prefix, blob_key
from branet_shared.storage.base import BlobKind
from branet_shared.storage.local import LocalBlobStore
from branet_shared.storage.sqlite import SQLiteResultStore
from tests.unit.shared.conftest import make_analysis

BLOB_KINDS: tuple[BlobKind, ...] = get_args(BlobKind)


async def read_all(store: LocalBlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.stream(key)])


async def test_blob_round_trip_of_ten_megabytes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    key = blob_key("alice", "a" * 32, "image")

    await store.put(key, data, "image/png")

    assert await read_all(store, key) == data


async def test_missing_blob_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(BlobNotFound):
        await read_all(LocalBlobStore(tmp_path), blob_key("alice", "b" * 32, "mask"))


async def test_delete_prefix_removes_one_analysis_only(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    for analysis_id in ("1" * 32, "2" * 32):
        for kind in BLOB_KINDS:
            await store.put(blob_key("alice", analysis_id, kind), b"x", "image/png")

    removed = await store.delete_prefix(analysis_prefix("alice", "1" * 32))

    assert removed == len(BLOB_KINDS)
    assert await read_all(store, blob_key("alice", "2" * 32, "roi")) == b"x"
    assert await store.delete_prefix(analysis_prefix("alice", "1" * 32)) == 0


def test_blob_keys_never_contain_the_user_id_or_escape() -> None:
    key = blob_key("alice@example.com", "c" * 32, "image")
    assert "alice" not in key
    assert key.startswith("users/")
    with pytest.raises(NotFound):
        analysis_prefix("alice", "../../etc")


async def test_unsafe_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        await LocalBlobStore(tmp_path).put("../outside", b"x", "image/png")


async def test_record_round_trip(results: SQLiteResultStore) -> None:
    analysis = make_analysis(1)
    await results.add(analysis)

    assert await results.get("alice", analysis.id) == analysis


async def test_records_are_durable_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    store = await SQLiteResultStore.open(path)
    await store.add(make_analysis(1))
    await store.close()

    reopened = await SQLiteResultStore.open(path)
    assert (await reopened.get("alice", make_analysis(1).id)).id == make_analysis(1).id
    await reopened.close()


async def test_another_owner_cannot_see_get_or_delete(results: SQLiteResultStore) -> None:
    analysis = make_analysis(1)
    await results.add(analysis)

    with pytest.raises(NotFound):
        await results.get("mallory", analysis.id)
    with pytest.raises(NotFound):
        await results.delete("mallory", analysis.id)
    assert (await results.list("mallory", 10, None)).items == []
    assert await results.get("alice", analysis.id) == analysis


@pytest.mark.parametrize("same_time", [False, True], ids=["distinct-times", "same-time"])
async def test_pages_are_newest_first_without_gaps_or_duplicates(
    results: SQLiteResultStore, same_time: bool
) -> None:
    for index in range(25):
        await results.add(make_analysis(index, same_time=same_time))
    await results.add(make_analysis(99, owner="bob"))

    seen: list[str] = []
    cursor: PageCursor | None = None
    sizes = []
    while True:
        page = await results.list("alice", 10, cursor)
        sizes.append(len(page.items))
        seen += [item.id for item in page.items]
        if page.next_cursor is None:
            break
        cursor = PageCursor.decode(page.next_cursor.encode())

    assert sizes == [10, 10, 5]
    assert seen == [make_analysis(i).id for i in reversed(range(25))]


async def test_exactly_full_last_page_has_no_next_cursor(results: SQLiteResultStore) -> None:
    for index in range(10):
        await results.add(make_analysis(index))

    assert (await results.list("alice", 10, None)).next_cursor is None


async def test_delete_then_get_is_not_found(results: SQLiteResultStore) -> None:
    await results.add(make_analysis(1))
    await results.delete("alice", make_analysis(1).id)

    with pytest.raises(NotFound):
        await results.get("alice", make_analysis(1).id)


async def test_concurrent_writes_all_land(results: SQLiteResultStore) -> None:
    await asyncio.gather(*(results.add(make_analysis(i)) for i in range(40)))

    assert len((await results.list("alice", 100, None)).items) == 40


@pytest.mark.parametrize("token", ["", "!!!", "eyJ0IjogMX0", "bm90IGpzb24"])
def test_foreign_cursors_are_invalid_parameters(token: str) -> None:
    with pytest.raises(InvalidParameter):
        PageCursor.decode(token)
