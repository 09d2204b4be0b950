"""Every environment variable docker-compose sets is a setting its service reads: a typo
would otherwise fall back to a default without a word."""

from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from branet_classifier.settings import ClassifierSettings
from branet_gateway.settings import GatewaySettings
from branet_segmenter.settings import SegmenterSettings
from tests.unit.infra.test_static_checks import ROOT

# Read by the Google client libraries, not by our settings.
CLIENT_LIBRARY_VARIABLES = {"FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"}
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "classifier": ClassifierSettings,
    "segmenter": SegmenterSettings,
}


def variables_read_by(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice) for choice in alias.choices}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def compose_environment() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {name: service.get("environment", {}) for name, service in document["services"].items()}


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_compose_sets_only_settings_the_service_reads(service: str) -> None:
    unknown = set(compose_environment()[service]) - variables_read_by(SETTINGS[service])

    assert unknown - CLIENT_LIBRARY_VARIABLES == set()


def test_the_check_would_catch_a_typo() -> None:
    assert "GATEWAY_GCS_BUCKET" in variables_read_by(GatewaySettings)
    assert "GATEWAY_GCS_BUKET" not in variables_read_by(GatewaySettings)
