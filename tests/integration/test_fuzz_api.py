"""Property-based fuzzing of the whole public API from its own OpenAPI document.

Schemathesis generates requests for every operation, valid and invalid, and checks each
answer: no server error, a documented status code and content type, a body that matches the
documented schema. The stack is real processes with the test models and a toy SAM, so that
every operation can succeed; rate limits are lifted so they do not hide the rest. Bounded by
`max_examples` per operation.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from branet_cli.stack import Stack
from branet_gateway.app import create_app
from branet_gateway.settings import GatewaySettings
from tests.images import gray_png
from tests.integration.conftest import start_stack

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def fuzzed_stack(
    model_dir: Path, sam_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("fuzz"),
        model_dir,
        SEGMENTER_MODEL_TYPE="toy",
        SEGMENTER_CHECKPOINT=str(sam_checkpoint),
        SEGMENTER_AUTO_POINTS_PER_SIDE="4",
        GATEWAY_RATE_LIMIT_PER_USER="100000/minute",
        GATEWAY_RATE_LIMIT_PER_IP="100000/minute",
    )
    stack.up(timeout_s=120)
    yield stack
    stack.down()


# The document is the app's own; the requests go to the running processes.
schema = schemathesis.openapi.from_dict(create_app(GatewaySettings()).openapi())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_no_schema_violations(
    case: schemathesis.Case[Any], fuzzed_stack: Stack
) -> None:
    case.call_and_validate(
        base_url=fuzzed_stack.services[-1].url,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
        timeout=60,
    )


@pytest.mark.parametrize(
    "fields",
    [{}, {"extract_roi": "true"}, {"box": "20,20,70,60", "explain": "true"}],
    ids=["whole-image", "automatic-roi", "box-and-heatmap"],
)
def test_successful_analyses_match_the_documented_schema(
    fuzzed_stack: Stack, fields: dict[str, str]
) -> None:
    gateway = fuzzed_stack.services[-1].url
    created = httpx.post(
        f"{gateway}/v1/analyses",
        files={"file": ("scan.png", gray_png(), "image/png")},
        data={"modality": "ultrasound", **fields},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    created.request.read()  # the multipart body was streamed; schemathesis looks at it
    schema["/v1/analyses"]["POST"].validate_response(created)

    listed = httpx.get(f"{gateway}/v1/analyses", params={"limit": 1})
    schema["/v1/analyses"]["GET"].validate_response(listed)
    fetched = httpx.get(f"{gateway}/v1/analyses/{created.json()['id']}")
    schema["/v1/analyses/{analysis_id}"]["GET"].validate_response(fetched)
