"""What is particular to the embedded stores and to keys and cursors. The behaviour every
store shares is the contract suite's (tests/integration/test_store_contract.py)."""

from pathlib import Path

import pytest

from branet_gateway.storage import PageCursor, analysis_prefix, blob_key
from branet_gateway.storage.local import LocalBlobStore
from branet_gateway.storage.sqlite import SQLiteResultStore
from branet_shared.errors import InvalidParameter, NotFound
from tests.factories import make_analysis


def test_blob_keys_never_contain_the_user_id_or_escape() -> None:
    key = blob_key("alice@example.com", "c" * 32, "image")
    assert "alice" not in key
    assert key.startswith("users/")
    with pytest.raises(NotFound):
        analysis_prefix("alice", "../../etc")


async def test_unsafe_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        await LocalBlobStore(tmp_path).put("../outside", b"x", "image/png")


async def test_records_are_durable_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    store = await SQLiteResultStore.open(path)
    await store.add(make_analysis(1))
    await store.close()

    reopened = await SQLiteResultStore.open(path)
    assert await reopened.get("alice", make_analysis(1).id) == make_analysis(1)
    await reopened.close()


def test_cursors_round_trip() -> None:
    cursor = PageCursor.after(make_analysis(3))

    assert PageCursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("token", ["", "!!!", "eyJ0IjogMX0", "bm90IGpzb24"])
def test_foreign_cursors_are_invalid_parameters(token: str) -> None:
    with pytest.raises(InvalidParameter):
        PageCursor.decode(token)
