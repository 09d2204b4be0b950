"""The orphan sweeper removes exactly the blobs that no record will ever claim."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from branet_gateway.metrics import GatewayMetrics
from branet_gateway.storage import blob_key
from branet_gateway.storage.local import LocalBlobStore
from branet_gateway.storage.sqlite import SQLiteResultStore
from branet_gateway.sweeper import OrphanSweeper
from tests.factories import make_analysis


@pytest.fixture
async def stores(tmp_path: Path) -> tuple[LocalBlobStore, SQLiteResultStore]:
    return LocalBlobStore(tmp_path / "blobs"), await SQLiteResultStore.open(tmp_path / "r.db")


async def test_only_old_blobs_without_a_record_are_removed(
    stores: tuple[LocalBlobStore, SQLiteResultStore],
) -> None:
    blobs, results = stores
    kept, orphan = make_analysis(1, "alice"), make_analysis(2, "alice")
    for analysis in (kept, orphan):
        await blobs.put(blob_key("alice", analysis.id, "image"), b"png", "image/png")
    await results.add(kept)
    later = datetime.now(UTC) + timedelta(minutes=20)
    sweeper = OrphanSweeper(blobs, results, 900, GatewayMetrics(), clock=lambda: later)

    swept = await sweeper.sweep()

    assert (swept.checked, swept.removed) == (2, 1)
    assert [s.analysis_id async for s in blobs.analyses()] == [kept.id]
    await results.close()


async def test_a_creation_still_writing_is_not_swept(
    stores: tuple[LocalBlobStore, SQLiteResultStore],
) -> None:
    blobs, results = stores
    writing = make_analysis(3, "bob")
    await blobs.put(blob_key("bob", writing.id, "image"), b"png", "image/png")
    sweeper = OrphanSweeper(blobs, results, 900, GatewayMetrics())

    assert (await sweeper.sweep()).removed == 0
    assert [s.analysis_id async for s in blobs.analyses()] == [writing.id]
    await results.close()


async def test_a_write_killed_half_way_is_swept_too(
    stores: tuple[LocalBlobStore, SQLiteResultStore], tmp_path: Path
) -> None:
    blobs, results = stores
    folder = tmp_path / "blobs" / "users" / ("0" * 32) / ("f" * 32)
    folder.mkdir(parents=True)
    (folder / ".tmp-abc").write_bytes(b"half")  # SIGKILL between write and rename
    later = datetime.now(UTC) + timedelta(hours=1)

    swept = await OrphanSweeper(blobs, results, 900, GatewayMetrics(), lambda: later).sweep()

    assert swept.removed == 1
    assert not folder.exists()
    await results.close()
