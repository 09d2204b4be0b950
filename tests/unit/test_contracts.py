"""The HTTP contracts: each service's OpenAPI document is the one committed in
tests/contracts/. A change to an API shows here, as a diff to review and commit on purpose:
    python -m tests.unit.test_contracts   # rewrites the committed documents
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from branet_classifier.app import create_app as create_classifier_app
from branet_gateway.app import create_app as create_gateway_app
from branet_segmenter.app import create_app as create_segmenter_app

CONTRACTS = Path(__file__).parents[1] / "contracts"
SERVICES: dict[str, Callable[[], FastAPI]] = {
    "gateway": create_gateway_app,
    "classifier": create_classifier_app,
    "segmenter": create_segmenter_app,
}


def openapi_document(service: str) -> dict[str, Any]:
    document: dict[str, Any] = SERVICES[service]().openapi()
    return document


def committed(service: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CONTRACTS / f"{service}.openapi.json").read_text())
    return document


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_answers_the_committed_openapi_document(service: str) -> None:
    assert openapi_document(service) == committed(service)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_the_gateways_operations_have_stable_ids() -> None:
    ids = {op["operationId"] for _, _, op in operations(openapi_document("gateway"))}

    expected = {"createAnalysis", "getAnalysis", "listAnalyses", "deleteAnalysis"}
    kinds = ("Image", "Mask", "Roi", "Heatmap")
    expected |= {f"{verb}Analysis{kind}" for verb in ("get", "head") for kind in kinds}
    assert expected <= ids
    assert all(operation_id.isalnum() for operation_id in ids)


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_is_a_problem_with_its_codes(service: str) -> None:
    document = openapi_document(service)

    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/readyz":  # not ready is a Readiness, not a problem
                continue
            (media, content), *others = response["content"].items()
            assert (media, others) == ("application/problem+json", []), (method, path, status)
            problem, narrowed = content["schema"]["allOf"]
            assert problem == {"$ref": "#/components/schemas/Problem"}
            assert narrowed["properties"]["code"]["enum"], (method, path, status)
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"]


def test_the_gateway_declares_its_headers_and_bearer_tokens() -> None:
    document = openapi_document("gateway")
    paths = document["paths"]

    assert document["components"]["securitySchemes"]["firebaseIdToken"]["scheme"] == "bearer"
    assert paths["/v1/analyses"]["post"]["security"] == [{"firebaseIdToken": []}]
    assert "Location" in paths["/v1/analyses"]["post"]["responses"]["201"]["headers"]
    image = paths["/v1/analyses/{analysis_id}/image"]
    assert set(image["get"]["responses"]["200"]["headers"]) >= {"ETag", "Content-Length"}
    assert "304" in image["get"]["responses"]
    assert "head" in image
    form = document["components"]["schemas"]["Body_createAnalysis"]["properties"]
    assert form["box"]["pattern"]
    assert form["points"]["pattern"]
    readiness = paths["/readyz"]["get"]["responses"]
    assert (
        readiness["200"]["content"]["application/json"]["schema"]
        == readiness["503"]["content"]["application/json"]["schema"]
    )


if __name__ == "__main__":
    for name in SERVICES:
        text = json.dumps(openapi_document(name), indent=1, sort_keys=True) + "\n"
        (CONTRACTS / f"{name}.openapi.json").write_text(text)
