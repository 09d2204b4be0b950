"""`ResultStore` on Firestore (async client).

One document per analysis, id = analysis id, with `owner`, `created_at` and `sort_key` fields
beside the Analysis itself. `sort_key` is `<created_at in µs, 20 digits>:<id>`: ordering by it
descending is newest first with ties broken by id, and a page cursor is a single range filter
(`sort_key < last key`) — correct on Firestore with the composite index (owner ASC, sort_key
DESC) declared in infra/firestore.indexes.json, and testable on an emulator that ignores
`start_after` and offsets.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from branet_gateway.storage.base import (
    IDEMPOTENCY_KEY_LIFETIME_S,
    IdempotencyKey,
    KeyAlreadyUsed,
    KeyedAnalysis,
    PageCursor,
    ResultPage,
    ResultStore,
)
from branet_shared.errors import NotFound, StoreUnavailable
from branet_shared.schemas import Analysis

UNREACHABLE = (google_errors.GoogleAPIError, OSError)
TIMEOUT_S = 10.0


@contextmanager
def _outage_is_unavailable() -> Iterator[None]:
    """Any failure to reach Firestore becomes a 503 that names no internals."""
    try:
        yield
    except google_errors.InvalidArgument:
        raise  # a bad request, not an outage: the caller decides
    except UNREACHABLE as exc:
        raise StoreUnavailable(f"the result store is unavailable ({type(exc).__name__})") from None


def sort_key(cursor: PageCursor) -> str:
    moment = cursor.created_at
    micros = int(moment.timestamp()) * 1_000_000 + moment.microsecond
    return f"{micros:020d}:{cursor.id}"


class FirestoreResultStore(ResultStore):
    def __init__(self, client: firestore.AsyncClient, collection: str = "analyses") -> None:
        self.client = client
        self.collection = client.collection(collection)
        # Documents named by a hash of (owner, key); `expires_at` is the TTL policy's field.
        self.keys = client.collection(f"{collection}_idempotency_keys")

    @classmethod
    def connect(
        cls, project: str | None, database: str, collection: str, emulator: bool = False
    ) -> "FirestoreResultStore":
        """Application Default Credentials, or anonymous against FIRESTORE_EMULATOR_HOST."""
        credentials = AnonymousCredentials() if emulator else None  # type: ignore[no-untyped-call]
        client = firestore.AsyncClient(
            project=project or "emulator", database=database, credentials=credentials
        )
        return cls(client, collection)

    async def add(self, analysis: Analysis, key: IdempotencyKey | None = None) -> None:
        document = {
            "owner": analysis.owner,
            "created_at": analysis.created_at,
            "sort_key": sort_key(PageCursor.after(analysis)),
            "analysis": analysis.model_dump(mode="json"),
        }
        # One commit: the record and its key, or neither (a key already there fails it). The
        # key goes first: the emulator applies a batch's writes in order and stops at the
        # first that fails, without Firestore's atomicity.
        batch = self.client.batch()
        if key is not None:
            await self._forget_expired(analysis.owner, key.key)
            now = datetime.now(UTC)
            batch.create(
                self._key_document(analysis.owner, key.key),
                {
                    "fingerprint": key.fingerprint,
                    "analysis_id": analysis.id,
                    "created_at": now,
                    "expires_at": now + timedelta(seconds=IDEMPOTENCY_KEY_LIFETIME_S),
                },
            )
        batch.create(self.collection.document(analysis.id), document)
        with _outage_is_unavailable():
            try:
                await batch.commit(timeout=TIMEOUT_S)
            except google_errors.Conflict:  # AlreadyExists: the key's (ids are random)
                if key is None:
                    raise
                raise KeyAlreadyUsed(analysis.id) from None

    def _key_document(self, owner: str, key: str) -> Any:
        name = hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()
        return self.keys.document(name)

    async def _keyed_snapshot(self, owner: str, key: str) -> Any:
        with _outage_is_unavailable():
            snapshot = await self._key_document(owner, key).get(timeout=TIMEOUT_S)
        return snapshot if snapshot.exists else None

    async def _forget_expired(self, owner: str, key: str) -> None:
        # The TTL policy deletes expired keys within a day; until then they must not count.
        snapshot = await self._keyed_snapshot(owner, key)
        if snapshot is not None and snapshot.get("expires_at") <= datetime.now(UTC):
            with _outage_is_unavailable():
                await snapshot.reference.delete(timeout=TIMEOUT_S)

    async def keyed(self, owner: str, key: str) -> KeyedAnalysis | None:
        snapshot = await self._keyed_snapshot(owner, key)
        if snapshot is None or snapshot.get("expires_at") <= datetime.now(UTC):
            return None
        return KeyedAnalysis(snapshot.get("fingerprint"), snapshot.get("analysis_id"))

    async def _owned(self, owner: str, analysis_id: str) -> Any:
        try:
            with _outage_is_unavailable():
                snapshot = await self.collection.document(analysis_id).get(timeout=TIMEOUT_S)
        except google_errors.InvalidArgument:
            raise NotFound("no such analysis") from None  # not a valid document id
        if not snapshot.exists or snapshot.get("owner") != owner:
            raise NotFound("no such analysis")
        return snapshot

    async def get(self, owner: str, analysis_id: str) -> Analysis:
        snapshot = await self._owned(owner, analysis_id)
        return Analysis.model_validate(snapshot.get("analysis"))

    async def list(self, owner: str, limit: int, cursor: PageCursor | None) -> ResultPage:
        query = self.collection.where(filter=firestore.FieldFilter("owner", "==", owner))
        if cursor is not None:
            query = query.where(filter=firestore.FieldFilter("sort_key", "<", sort_key(cursor)))
        query = query.order_by("sort_key", direction=firestore.Query.DESCENDING).limit(limit + 1)
        with _outage_is_unavailable():
            documents = [doc async for doc in query.stream(timeout=TIMEOUT_S)]
        items = [Analysis.model_validate(doc.get("analysis")) for doc in documents[:limit]]
        more = len(documents) > limit
        return ResultPage(items=items, next_cursor=PageCursor.after(items[-1]) if more else None)

    async def delete(self, owner: str, analysis_id: str) -> None:
        snapshot = await self._owned(owner, analysis_id)
        with _outage_is_unavailable():
            await snapshot.reference.delete(timeout=TIMEOUT_S)

    async def exists(self, analysis_id: str) -> bool:
        with _outage_is_unavailable():
            snapshot = await self.collection.document(analysis_id).get(timeout=TIMEOUT_S)
        return bool(snapshot.exists)

    async def check(self) -> None:
        with _outage_is_unavailable():
            await self.collection.document("_readiness_probe").get(timeout=5.0)

    async def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
