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


if __name__ == "__main__":
    for name in SERVICES:
        text = json.dumps(openapi_document(name), indent=1, sort_keys=True) + "\n"
        (CONTRACTS / f"{name}.openapi.json").write_text(text)
