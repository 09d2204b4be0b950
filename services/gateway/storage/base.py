"""The storage interfaces the gateway is written against.

Blob keys are derived from (owner, analysis id, kind), so a record never has to carry them and a
DELETE knows every blob of an analysis from its prefix alone. The owner is hashed into the key:
no user id appears in object names, and no id can escape its prefix.
"""

import base64
import binascii
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from branet_shared.errors import InvalidParameter, NotFound
from branet_shared.schemas import Analysis

BlobKind = Literal["image", "mask", "roi", "heatmap"]


class BlobNotFound(NotFound):
    pass


def _owner_prefix(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def analysis_prefix(owner: str, analysis_id: str) -> str:
    if not analysis_id.isalnum():
        raise NotFound("no such analysis")
    return f"users/{_owner_prefix(owner)}/{analysis_id}/"


def blob_key(owner: str, analysis_id: str, kind: BlobKind) -> str:
    return analysis_prefix(owner, analysis_id) + kind


@dataclass(frozen=True)
class StoredBlobs:
    """The blobs stored under one analysis's prefix, and when the newest of them was written."""

    prefix: str
    analysis_id: str
    newest: datetime


def parse_analysis_prefix(key: str) -> tuple[str, str] | None:
    """(prefix, analysis id) of a key under `users/<owner hash>/<analysis id>/`."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "users" or not parts[2].isalnum():
        return None
    return f"users/{parts[1]}/{parts[2]}/", parts[2]


class BlobStore(ABC):
    """Immutable blobs addressed by key."""

    @abstractmethod
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` durably under `key`; a reader never sees a partial blob."""

    @abstractmethod
    def stream(self, key: str) -> AsyncIterator[bytes]:
        """Yield the blob's bytes in chunks; raises `BlobNotFound` before the first chunk."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under `prefix`; returns how many were deleted."""

    @abstractmethod
    def analyses(self) -> AsyncIterator[StoredBlobs]:
        """Every analysis prefix that holds blobs (or a write's leftovers)."""

    @abstractmethod
    async def check(self) -> None:
        """Raise if the store cannot be written."""

    async def close(self) -> None:  # noqa: B027 - most stores hold nothing to close
        """Release connections."""


@dataclass(frozen=True)
class PageCursor:
    """Position after the last item of a page: newest first, ties broken by id."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        raw = json.dumps({"t": self.created_at.isoformat(), "id": self.id}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "PageCursor":
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            fields = json.loads(raw)
            created_at = datetime.fromisoformat(fields["t"])
            analysis_id = fields["id"]
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise InvalidParameter("cursor is not one this service issued") from None
        if not isinstance(analysis_id, str) or created_at.tzinfo is None:
            raise InvalidParameter("cursor is not one this service issued")
        return cls(created_at=created_at, id=analysis_id)

    @classmethod
    def after(cls, analysis: Analysis) -> "PageCursor":
        return cls(created_at=analysis.created_at, id=analysis.id)


@dataclass(frozen=True)
class IdempotencyKey:
    """A caller's `Idempotency-Key` and the fingerprint of the request it came with."""

    key: str
    fingerprint: str


@dataclass(frozen=True)
class KeyedAnalysis:
    """What an idempotency key, once used, points to."""

    fingerprint: str
    analysis_id: str


class KeyAlreadyUsed(Exception):
    """`add` with an idempotency key the owner has used already: nothing was written."""


# How long a key is remembered: a client's retries come within minutes, not days.
IDEMPOTENCY_KEY_LIFETIME_S = 24 * 3600


@dataclass(frozen=True)
class ResultPage:
    items: list[Analysis]
    next_cursor: PageCursor | None


class ResultStore(ABC):
    """Analysis records, each readable only through its owner."""

    @abstractmethod
    async def add(self, analysis: Analysis, key: IdempotencyKey | None = None) -> None:
        """Insert a new record, and with `key` remember it under that key in the same write;
        `KeyAlreadyUsed` (and nothing written) if the owner has used the key already. It is
        durable when this returns."""

    @abstractmethod
    async def keyed(self, owner: str, key: str) -> KeyedAnalysis | None:
        """What the owner's idempotency key points to, if used in the last
        `IDEMPOTENCY_KEY_LIFETIME_S`."""

    @abstractmethod
    async def get(self, owner: str, analysis_id: str) -> Analysis:
        """The owner's record, or `NotFound` (also when another user owns it)."""

    @abstractmethod
    async def list(self, owner: str, limit: int, cursor: PageCursor | None) -> ResultPage:
        """The owner's records, newest first, starting after `cursor`."""

    @abstractmethod
    async def delete(self, owner: str, analysis_id: str) -> None:
        """Remove the owner's record, or raise `NotFound`."""

    @abstractmethod
    async def exists(self, analysis_id: str) -> bool:
        """Whether a record of that id exists, whoever owns it (the orphan sweeper asks)."""

    @abstractmethod
    async def check(self) -> None:
        """Raise if the store cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
