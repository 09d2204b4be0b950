"""The gateway's own series beside every service's: analyses running and shed, rate-limit
refusals, and the stores' failures."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from prometheus_client import Counter, Gauge

from branet_gateway.storage.base import KeyAlreadyUsed
from branet_shared.errors import BraNetError
from branet_shared.metrics import ServiceMetrics

Store = Literal["blob", "result"]


class GatewayMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("gateway")
        self.in_flight = Gauge(
            "branet_analyses_in_flight",
            "Analyses running now in this instance",
            registry=self.registry,
        )
        self.shed = Counter(
            "branet_analyses_shed_total",
            "Analyses refused with 503 overloaded: every slot of the instance was taken",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "branet_rate_limited_total",
            "Analyses refused with 429, by the limit that refused them",
            ["limit"],
            registry=self.registry,
        )
        self.sweeps = Counter(
            "branet_orphan_sweeps_total",
            "Sweeps for blobs without a record",
            registry=self.registry,
        )
        self.orphans_removed = Counter(
            "branet_orphans_removed_total",
            "Analyses whose blobs were removed because they had no record",
            registry=self.registry,
        )
        self.store_errors = Counter(
            "branet_store_errors_total",
            "Store operations that failed (not those answered 4xx, such as a missing record)",
            ["store", "operation"],
            registry=self.registry,
        )

    @contextmanager
    def store_call(self, store: Store, operation: str) -> Iterator[None]:
        """Counts the failures of one store operation."""
        try:
            yield
        except KeyAlreadyUsed:  # an answer, not a failure: the retry's first request won
            raise
        except BraNetError as exc:
            if exc.status >= 500:
                self.store_errors.labels(store, operation).inc()
            raise
        except Exception:
            self.store_errors.labels(store, operation).inc()
            raise
