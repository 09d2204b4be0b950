"""What an operator watches: each service's /metrics after an analysis, and one trace across
gateway → segmenter → classifier that the gateway's log line names."""

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from branet_shared.logs import SPAN_FIELD, TRACE_FIELD, log_handler
from tests.images import gray_png
from tests.unit.gateway.conftest import Gateway, GatewayFactory

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(gateway: Gateway, service: str) -> Samples:
    client = await gateway.service_client(service)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
async def gateway_with_sam(make_gateway: GatewayFactory, sam_checkpoint: Path) -> Gateway:
    return await make_gateway(sam_checkpoint=sam_checkpoint, rate_limit_per_user="2/minute")


async def test_each_service_counts_requests_stages_and_model_state(
    gateway_with_sam: Gateway,
) -> None:
    gateway = gateway_with_sam
    assert (await gateway.analyse(gray_png(), box="20,20,70,60")).status_code == 201

    front = await scrape(gateway, "gateway")
    requests = {"handler": "/v1/analyses", "method": "POST", "status": "201"}
    assert value(front, "http_requests_total", **requests) == 1
    timed = {"handler": "/v1/analyses", "method": "POST"}
    assert value(front, "http_request_duration_seconds_count", **timed) == 1
    for stage in ("validate", "segment", "classify", "store"):
        assert value(front, "branet_stage_duration_seconds_count", stage=stage) == 1
    assert value(front, "branet_analyses_in_flight") == 0

    classifier = await scrape(gateway, "classifier")
    assert value(classifier, "branet_model_ready", model="ultrasound") == 1
    assert value(classifier, "branet_model_load_seconds", model="ultrasound") > 0
    assert value(classifier, "branet_stage_duration_seconds_count", stage="infer") == 1
    classify = {"handler": "/v1/classify/{modality}", "method": "POST", "status": "200"}
    assert value(classifier, "http_requests_total", **classify) == 1

    segmenter = await scrape(gateway, "segmenter")
    assert value(segmenter, "branet_model_ready", model="sam") == 1
    assert value(segmenter, "branet_stage_duration_seconds_count", stage="segment") == 1


async def test_refusals_are_counted(gateway_with_sam: Gateway) -> None:
    gateway = gateway_with_sam
    codes = [(await gateway.analyse(gray_png())).status_code for _ in range(3)]

    assert codes == [201, 201, 429]
    front = await scrape(gateway, "gateway")
    assert value(front, "branet_rate_limited_total", limit="user") == 1
    refused = {"handler": "/v1/analyses", "method": "POST", "status": "429"}
    assert value(front, "http_requests_total", **refused) == 1


async def test_a_missing_model_is_a_series_at_zero(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()  # no SAM checkpoint

    segmenter = await scrape(gateway, "segmenter")

    assert value(segmenter, "branet_model_ready", model="sam") == 0


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def providers(exporter: InMemorySpanExporter) -> dict[str, TracerProvider]:
    """One provider a service, as three processes would have, all exporting to `exporter`."""
    made = {}
    for service in ("gateway", "segmenter", "classifier"):
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"branet-{service}"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        made[service] = provider
    return made


@pytest.fixture
def gateway_log() -> Iterator[io.StringIO]:
    """The gateway's JSON log lines, as its process would write them."""
    lines = io.StringIO()
    handler = log_handler("gateway")
    handler.setStream(lines)  # type: ignore[attr-defined]  # a StreamHandler
    logger = logging.getLogger("branet_gateway")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)


async def test_one_trace_spans_the_three_services_and_the_log(
    make_gateway: GatewayFactory,
    sam_checkpoint: Path,
    spans: InMemorySpanExporter,
    gateway_log: io.StringIO,
) -> None:
    services = providers(spans)
    gateway = await make_gateway(sam_checkpoint=sam_checkpoint, traces=services.__getitem__)

    response = await gateway.analyse(gray_png(), box="20,20,70,60")

    assert response.status_code == 201
    finished = spans.get_finished_spans()
    trace_ids = {span.context.trace_id for span in finished}
    assert len(trace_ids) == 1
    by_service: dict[str, set[str]] = {}
    for span in finished:
        by_service.setdefault(str(span.resource.attributes[SERVICE_NAME]), set()).add(span.name)
    assert {"validate", "segment", "classify", "store", "POST /v1/analyses"} <= by_service[
        "branet-gateway"
    ]
    assert {"POST /v1/segment", "segment"} <= by_service["branet-segmenter"]
    assert {"POST /v1/classify/{modality}", "preprocess", "infer"} <= by_service[
        "branet-classifier"
    ]
    lines = [json.loads(line) for line in gateway_log.getvalue().splitlines()]
    created = [line for line in lines if line["message"].startswith("analysis ")]
    assert len(created) == 1
    assert created[0][TRACE_FIELD] == format(trace_ids.pop(), "032x")
    assert len(created[0][SPAN_FIELD]) == 16
    assert created[0]["time"].endswith("Z")  # RFC 3339, UTC
