"""`ResultStore` on SQLite: the embedded default, durable across restarts (WAL, full sync)."""

import asyncio
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import aiosqlite

from branet_gateway.storage.base import (
    IDEMPOTENCY_KEY_LIFETIME_S,
    IdempotencyKey,
    KeyAlreadyUsed,
    KeyedAnalysis,
    PageCursor,
    ResultPage,
    ResultStore,
)
from branet_shared.errors import NotFound
from branet_shared.schemas import Analysis

_SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS analyses_by_owner_newest
    ON analyses (owner, created_at_us DESC, id DESC);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    analysis_id TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
);
"""


def _micros(moment: datetime) -> int:
    # Integer microseconds sort exactly; ISO strings with offsets would not.
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _now_us() -> int:
    return int(time.time() * 1_000_000)


class SQLiteResultStore(ResultStore):
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        # One connection for every request: a transaction of several statements must not
        # interleave with another's commit.
        self._writing = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> "SQLiteResultStore":
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path)
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=FULL")
        await connection.executescript(_SCHEMA)
        await connection.commit()
        return cls(connection)

    async def add(self, analysis: Analysis, key: IdempotencyKey | None = None) -> None:
        async with self._writing:
            await self._add(analysis, key)

    async def _add(self, analysis: Analysis, key: IdempotencyKey | None) -> None:
        created_at_us = _micros(analysis.created_at)
        try:  # one transaction: the record and its key, or neither
            if key is not None:
                await self._forget_expired(analysis.owner, key.key)
                await self._db.execute(
                    "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                    (analysis.owner, key.key, key.fingerprint, analysis.id, _now_us()),
                )
            await self._db.execute(
                "INSERT INTO analyses (id, owner, created_at_us, document) VALUES (?, ?, ?, ?)",
                (analysis.id, analysis.owner, created_at_us, analysis.model_dump_json()),
            )
        except sqlite3.IntegrityError:
            await self._db.rollback()
            raise KeyAlreadyUsed(analysis.id) from None
        except BaseException:
            await self._db.rollback()
            raise
        await self._db.commit()

    async def _forget_expired(self, owner: str, key: str) -> None:
        await self._db.execute(
            "DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND created_at_us < ?",
            (owner, key, _now_us() - IDEMPOTENCY_KEY_LIFETIME_S * 1_000_000),
        )

    async def keyed(self, owner: str, key: str) -> KeyedAnalysis | None:
        async with self._db.execute(
            "SELECT fingerprint, analysis_id FROM idempotency_keys"
            " WHERE owner = ? AND key = ? AND created_at_us >= ?",
            (owner, key, _now_us() - IDEMPOTENCY_KEY_LIFETIME_S * 1_000_000),
        ) as rows:
            row = await rows.fetchone()
        return None if row is None else KeyedAnalysis(row[0], row[1])

    async def get(self, owner: str, analysis_id: str) -> Analysis:
        async with self._db.execute(
            "SELECT document FROM analyses WHERE id = ? AND owner = ?", (analysis_id, owner)
        ) as rows:
            row = await rows.fetchone()
        if row is None:
            raise NotFound("no such analysis")
        return Analysis.model_validate_json(row[0])

    async def list(self, owner: str, limit: int, cursor: PageCursor | None) -> ResultPage:
        query = "SELECT document FROM analyses WHERE owner = ?"
        params: list[str | int] = [owner]
        if cursor is not None:
            at = _micros(cursor.created_at)
            query += " AND (created_at_us < ? OR (created_at_us = ? AND id < ?))"
            params += [at, at, cursor.id]
        query += " ORDER BY created_at_us DESC, id DESC LIMIT ?"
        params.append(limit + 1)  # one extra row says whether another page exists
        async with self._db.execute(query, params) as rows:
            documents = [row[0] for row in await rows.fetchall()]
        items = [Analysis.model_validate_json(doc) for doc in documents[:limit]]
        more = len(documents) > limit
        return ResultPage(items=items, next_cursor=PageCursor.after(items[-1]) if more else None)

    async def delete(self, owner: str, analysis_id: str) -> None:
        async with self._writing:
            cursor = await self._db.execute(
                "DELETE FROM analyses WHERE id = ? AND owner = ?", (analysis_id, owner)
            )
            await self._db.commit()
        if cursor.rowcount == 0:
            raise NotFound("no such analysis")

    async def exists(self, analysis_id: str) -> bool:
        async with self._db.execute("SELECT 1 FROM analyses WHERE id = ?", (analysis_id,)) as rows:
            return await rows.fetchone() is not None

    async def check(self) -> None:
        async with self._db.execute("SELECT 1") as rows:
            await rows.fetchone()

    async def close(self) -> None:
        await self._db.close()
