"""The OpenAPI document as generated clients need it (openapi-typescript, openapi-fetch, ...).

FastAPI documents its own validation errors as `HTTPValidationError` under `application/json`,
which no BraNet service ever sends: every error is a `Problem` as `application/problem+json`.
`install_openapi` corrects that and declares `Retry-After` wherever an answer carries it.
"""

from typing import Any

from fastapi import FastAPI

from branet_shared.errors import PROBLEM_MEDIA_TYPE, problem_content
from branet_shared.schemas import Problem

FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
RETRY_AFTER = {
    "description": "seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 1},
}
OpenAPI = dict[str, Any]


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` with one that corrects FastAPI's document (once, then cached)."""
    generate = app.openapi

    def openapi() -> OpenAPI:
        if app.openapi_schema is None:
            app.openapi_schema = corrected(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way


def corrected(document: OpenAPI) -> OpenAPI:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                _correct_response(status, response)
    return document


def _correct_response(status: str, response: dict[str, Any]) -> None:
    content = response.get("content", {})
    schema_ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    if status == "422" and schema_ref.endswith("/HTTPValidationError"):
        response["description"] = "`invalid_parameter`"
        response["content"] = problem_content(["invalid_parameter"])
    if status in ("429", "503") and PROBLEM_MEDIA_TYPE in response.get("content", {}):
        response.setdefault("headers", {})["Retry-After"] = RETRY_AFTER
