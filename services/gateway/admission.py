"""Who may start an analysis now: per-user and per-IP rate limits, and a bound on the analyses
running at once in this instance, so overload is shed with a 503 before memory runs out."""

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from branet_gateway.metrics import GatewayMetrics
from branet_shared.errors import Overloaded, RateLimited


class AdmissionControl:
    def __init__(
        self, per_user: str, per_ip: str, max_in_flight: int, metrics: GatewayMetrics
    ) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_user = parse(per_user)
        self._per_ip = parse(per_ip)
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.metrics = metrics

    def check_rate(self, user_id: str, client_ip: str) -> None:
        """Count one analysis against the caller's budgets, or raise 429 with Retry-After."""
        for item, key in ((self._per_user, f"user:{user_id}"), (self._per_ip, f"ip:{client_ip}")):
            if not self._limiter.hit(item, "analyses", key):
                reset = self._limiter.get_window_stats(item, "analyses", key).reset_time
                retry_after = max(1, math.ceil(reset - time.time()))
                limit = "user" if key.startswith("user") else "address"
                self.metrics.rate_limited.labels(limit).inc()
                raise RateLimited(
                    f"too many analyses; try again in {retry_after} s ({item} per {limit})",
                    headers={"Retry-After": str(retry_after)},
                )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the instance's analysis slots, or shed the request with 503."""
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
