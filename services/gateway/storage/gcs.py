"""`BlobStore` on Google Cloud Storage.

Objects live under the per-user prefix of `blob_key`, with their content type and SHA-256 in
the object's metadata; uniform bucket-level access is assumed (no ACLs are set). The client is
synchronous, so every call runs in a worker thread. Retries are bounded: a GCS outage must fail
a request in seconds (503), not hold it for the client's default two minutes.
"""

import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TypeVar

import anyio.to_thread
from google.api_core import exceptions as google_errors
from google.api_core.retry import Retry, if_transient_error
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]  # untyped package
from requests import exceptions as requests_errors

from branet_gateway.storage.base import BlobNotFound, BlobStore, StoredBlobs, parse_analysis_prefix
from branet_shared.errors import StoreUnavailable

T = TypeVar("T")
CHUNK_BYTES = 256 * 1024
TIMEOUT_S = (3.0, 30.0)  # connect, read
UNREACHABLE = (google_errors.GoogleAPIError, requests_errors.RequestException, OSError)


def _retry(deadline_s: float) -> Retry:
    return Retry(
        predicate=lambda exc: (
            if_transient_error(exc) or isinstance(exc, requests_errors.ConnectionError)
        ),
        initial=0.2,
        maximum=1.0,
        timeout=deadline_s,
    )


class GCSBlobStore(BlobStore):
    def __init__(self, bucket: storage.Bucket, retry_deadline_s: float = 5.0) -> None:
        self.bucket = bucket
        self.retry = _retry(retry_deadline_s)

    @classmethod
    def connect(
        cls, bucket: str, project: str | None, endpoint: str | None = None
    ) -> "GCSBlobStore":
        """Application Default Credentials, or anonymous against an emulator `endpoint`."""
        if endpoint:
            client = storage.Client(
                project=project or "emulator",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": endpoint},
            )
        else:
            client = storage.Client(project=project)
        return cls(client.bucket(bucket))

    async def _call(self, function: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(function)
        except google_errors.NotFound:
            raise BlobNotFound("no such blob") from None
        except UNREACHABLE as exc:
            raise StoreUnavailable(
                f"the blob store is unavailable ({type(exc).__name__})"
            ) from None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        blob = self.bucket.blob(key)
        blob.metadata = {"sha256": hashlib.sha256(data).hexdigest()}
        await self._call(
            lambda: blob.upload_from_string(
                data,
                content_type=content_type,
                checksum="crc32c",
                timeout=TIMEOUT_S,
                retry=self.retry,
            )
        )

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        blob = self.bucket.blob(key)
        await self._call(lambda: blob.reload(timeout=TIMEOUT_S, retry=self.retry))
        reader = await self._call(lambda: blob.open("rb", chunk_size=CHUNK_BYTES))
        try:
            while chunk := await self._call(lambda: reader.read(CHUNK_BYTES)):
                yield chunk
        finally:
            reader.close()

    async def delete_prefix(self, prefix: str) -> int:
        def delete_all() -> int:
            blobs = list(self.bucket.list_blobs(prefix=prefix, timeout=TIMEOUT_S, retry=self.retry))
            for blob in blobs:
                with contextlib.suppress(google_errors.NotFound):  # gone already: as asked
                    blob.delete(timeout=TIMEOUT_S, retry=self.retry)
            return len(blobs)

        return await self._call(delete_all)

    async def analyses(self) -> AsyncIterator[StoredBlobs]:
        def newest_by_prefix() -> dict[tuple[str, str], datetime]:
            newest: dict[tuple[str, str], datetime] = {}
            for blob in self.bucket.list_blobs(prefix="users/", timeout=TIMEOUT_S):
                where = parse_analysis_prefix(blob.name)
                if where is not None and blob.updated is not None:
                    newest[where] = max(blob.updated, newest.get(where, blob.updated))
            return newest

        for (prefix, analysis_id), written in (await self._call(newest_by_prefix)).items():
            yield StoredBlobs(prefix, analysis_id, written)

    async def check(self) -> None:
        await self._call(lambda: self.bucket.reload(timeout=TIMEOUT_S, retry=self.retry))
