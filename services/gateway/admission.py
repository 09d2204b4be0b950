"""Who may start an analysis now: a bound on the analyses running at once in this instance, so
overload is shed with a 503 before memory runs out, then the per-user and per-address rate
limits, counted in a store every instance shares (Redis) or, on the embedded default, in
memory.

A request shed for lack of a slot is not charged to the caller's rate limits: the slot is
taken first.
"""

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from branet_gateway.metrics import GatewayMetrics
from branet_shared.errors import Overloaded, RateLimited, StoreUnavailable


def rate_limit_storage(uri: str) -> Storage:
    """`memory://`, or `redis://host:port/db` (`rediss://` with TLS) shared by every instance."""
    if uri == "memory://":
        return MemoryStorage()
    storage = storage_from_string(f"async+{uri}", implementation="redispy")
    assert isinstance(storage, Storage)
    return storage


class AdmissionControl:
    def __init__(
        self,
        per_user: str,
        per_ip: str,
        max_in_flight: int,
        metrics: GatewayMetrics,
        storage: Storage | None = None,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())
        self._per_user = parse(per_user)
        self._per_ip = parse(per_ip)
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.metrics = metrics

    @asynccontextmanager
    async def admit(self, user_id: str, client_ip: str) -> AsyncIterator[None]:
        """Hold one of the instance's analysis slots (else 503), then charge the caller's
        budgets (else 429); the slot is released when the block ends."""
        async with self._slot():
            await self._charge(user_id, client_ip)
            yield

    async def _charge(self, user_id: str, client_ip: str) -> None:
        for item, key, limit in (
            (self._per_user, f"user:{user_id}", "user"),
            (self._per_ip, f"ip:{client_ip}", "address"),
        ):
            try:
                allowed = await self._limiter.hit(item, "analyses", key)
                if allowed:
                    continue
                reset = (await self._limiter.get_window_stats(item, "analyses", key)).reset_time
            except Exception as exc:  # the shared store is down: refuse rather than not count
                self.metrics.store_errors.labels("rate_limit", "hit").inc()
                raise StoreUnavailable("the rate-limit store is unavailable") from exc
            retry_after = max(1, math.ceil(reset - time.time()))
            self.metrics.rate_limited.labels(limit).inc()
            raise RateLimited(
                f"too many analyses; try again in {retry_after} s ({item} per {limit})",
                headers={"Retry-After": str(retry_after)},
            )

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self.in_flight >= self.max_in_flight:
            self.metrics.shed.inc()
            raise Overloaded("the service is at capacity; try again shortly")
        self.in_flight += 1  # single event loop: no lock needed between check and increment
        self.metrics.in_flight.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()
