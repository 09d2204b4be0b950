"""OpenTelemetry traces: one trace per request across gateway → segmenter → classifier.

Incoming W3C `traceparent` headers are continued (FastAPI instrumentation) and outgoing calls
carry them (httpx instrumentation), so Cloud Run's front end, the gateway and both model
services write into one trace. Spans are exported only where an exporter is configured:
`otlp` (an OpenTelemetry collector; `OTEL_EXPORTER_OTLP_ENDPOINT` and the other standard
variables apply) or `cloud_trace` (Cloud Trace, with the service account's credentials).
With `none`, the default of the embedded stack, nothing is instrumented and nothing is sent.
Sampling follows the standard `OTEL_TRACES_SAMPLER` variables (default: every trace, or as
the caller's `traceparent` says).
"""

from typing import Literal

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from branet_shared.metrics import UNMEASURED_PATHS

TraceExporter = Literal["none", "otlp", "cloud_trace"]


def _exporter(kind: TraceExporter) -> SpanExporter | None:
    # Imported here: each exporter pulls in its own client stack, needed only where chosen.
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if kind == "cloud_trace":
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        return CloudTraceSpanExporter()  # type: ignore[no-untyped-call]
    return None


def tracer_provider(service: str, version: str, kind: TraceExporter) -> TracerProvider | None:
    """A provider exporting `service`'s spans the configured way; None where tracing is off."""
    exporter = _exporter(kind)
    if exporter is None:
        return None
    resource = Resource.create({SERVICE_NAME: f"branet-{service}", SERVICE_VERSION: version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def tracer(provider: TracerProvider | None) -> trace.Tracer:
    """The tracer of a service's own stage spans: a no-op one where tracing is off."""
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer("branet")


def instrument_app(app: FastAPI, provider: TracerProvider | None) -> None:
    if provider is not None:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=provider, excluded_urls=",".join(UNMEASURED_PATHS)
        )


def instrument_client(client: httpx.AsyncClient, provider: TracerProvider | None) -> None:
    """Outgoing calls get spans of their own and carry the trace to the model services."""
    if provider is not None:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
