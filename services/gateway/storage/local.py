"""`BlobStore` on a local folder: the embedded default."""

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from branet_gateway.storage.base import BlobNotFound, BlobStore, StoredBlobs

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*/?$")
CHUNK_BYTES = 64 * 1024


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key):
            raise ValueError(f"unsafe blob key {key!r}")
        return self.root / key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await anyio.to_thread.run_sync(_write_atomically, self._path(key), data)

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        try:
            handle = await anyio.open_file(self._path(key), "rb")
        except FileNotFoundError:
            raise BlobNotFound("no such blob") from None
        async with handle:
            while chunk := await handle.read(CHUNK_BYTES):
                yield chunk

    async def delete_prefix(self, prefix: str) -> int:
        return await anyio.to_thread.run_sync(_delete_tree, self._path(prefix))

    async def analyses(self) -> AsyncIterator[StoredBlobs]:
        for stored in await anyio.to_thread.run_sync(self._analyses):
            yield stored

    def _analyses(self) -> list[StoredBlobs]:
        found = []
        for folder in sorted(self.root.glob("users/*/*")):
            if not folder.is_dir() or not folder.name.isalnum():
                continue
            # Unfinished writes (.tmp-*) count: a write in progress is not old.
            times = [p.stat().st_mtime for p in folder.iterdir()] or [folder.stat().st_mtime]
            newest = datetime.fromtimestamp(max(times), UTC)
            prefix = f"users/{folder.parent.name}/{folder.name}/"
            found.append(StoredBlobs(prefix, folder.name, newest))
        return found

    async def check(self) -> None:
        await anyio.to_thread.run_sync(_write_atomically, self.root / ".check", b"ok")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, rename: a crash leaves the old state or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _delete_tree(path: Path) -> int:
    if not path.exists():
        return 0
    count = sum(1 for p in path.rglob("*") if p.is_file())
    shutil.rmtree(path)
    _fsync_dir(path.parent)
    return count


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
