"""Prometheus series of one service, at `/metrics`: its HTTP requests (by route template and
status, with latency histograms, from `prometheus-fastapi-instrumentator`) and the durations of
its work's stages, each stage also a trace span.

Every app has a registry of its own, so tests that build many apps in one process never share
(or collide on) a series.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry, Histogram
from prometheus_fastapi_instrumentator import Instrumentator

# Stages run from ~1 ms (a cached decode) to tens of seconds (SAM ViT-H on a CPU).
STAGE_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Probes and the scrape itself would drown the series that matter.
UNMEASURED_PATHS = ("/healthz", "/readyz", "/metrics")


@dataclass
class Stopwatch:
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.started

    def lap_ms(self) -> float:
        """Milliseconds since the start, while it runs."""
        return round((time.perf_counter() - self.started) * 1000, 2)

    @property
    def ms(self) -> float:
        return round(self.seconds * 1000, 2)


class ServiceMetrics:
    """The series every service has; services subclass it to add their own."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.stage_seconds = Histogram(
            "branet_stage_duration_seconds",
            "Duration of one stage of a request's work (validate, segment, classify, ...)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )

    def install(self, app: FastAPI) -> None:
        """Count and time `app`'s requests, and serve every series at `/metrics`."""
        Instrumentator(
            should_group_status_codes=False,
            should_ignore_untemplated=True,  # a scan of random paths must not grow the series
            excluded_handlers=list(UNMEASURED_PATHS),
            registry=self.registry,
        ).instrument(app).expose(app, include_in_schema=False)


class Stages:
    """Times a request's stages into the stage histogram, each inside a span of its name."""

    def __init__(self, metrics: ServiceMetrics, tracer: Tracer) -> None:
        self.histogram = metrics.stage_seconds
        self.tracer = tracer

    @contextmanager
    def timed(self, stage: str) -> Iterator[Stopwatch]:
        watch = Stopwatch()
        with self.tracer.start_as_current_span(stage):
            try:
                yield watch
            finally:
                watch.stop()
                self.histogram.labels(stage).observe(watch.seconds)
