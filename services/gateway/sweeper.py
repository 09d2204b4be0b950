"""No orphan, ever: blobs whose analysis has no record are removed within a grace period.

The write protocol leaves only one kind of leftover. A creation writes its blobs, then the
record; a deletion removes the record, then the blobs. So a record always has its blobs, and a
process killed between the two steps (or a blob removal that failed) leaves blobs without a
record. The sweeper, at start and then periodically, removes every analysis's blobs that have
no record and whose newest blob is older than the grace period, which is longer than any
request may run (so a creation still writing is never swept).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio

from branet_gateway.metrics import GatewayMetrics
from branet_gateway.storage import BlobStore, ResultStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    checked: int
    removed: int


class OrphanSweeper:
    def __init__(
        self,
        blobs: BlobStore,
        results: ResultStore,
        grace_s: float,
        metrics: GatewayMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.blobs = blobs
        self.results = results
        self.grace = timedelta(seconds=grace_s)
        self.metrics = metrics
        self.clock = clock

    async def sweep(self) -> Sweep:
        checked = removed = 0
        cutoff = self.clock() - self.grace
        async for stored in self.blobs.analyses():
            checked += 1
            if stored.newest > cutoff or await self.results.exists(stored.analysis_id):
                continue
            await self.blobs.delete_prefix(stored.prefix)
            removed += 1
            log.warning("removed the blobs of analysis %s: it has no record", stored.analysis_id)
        self.metrics.orphans_removed.inc(removed)
        self.metrics.sweeps.inc()
        return Sweep(checked, removed)

    async def run(self, interval_s: float) -> None:
        """Sweep now and every `interval_s`; a failed sweep is logged and tried again later."""
        while True:
            try:
                done = await self.sweep()
                log.info("orphan sweep: %d analyses checked, %d removed", *vars(done).values())
            except Exception as exc:
                self.metrics.store_errors.labels("blob", "sweep").inc()
                log.warning("orphan sweep failed: %s", exc)
            await anyio.sleep(interval_s)
