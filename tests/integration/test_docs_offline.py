"""`/docs` renders in headless Chromium with every non-loopback address unreachable."""

import subprocess
from pathlib import Path

import pytest

from tests.integration.browser import browser_binaries, offline_flags
from tests.integration.conftest import StackFactory

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def render(url: str, profile: Path) -> str:
    """The DOM after scripts ran, with the network cut off but for loopback."""
    chromium, _ = browser_binaries()
    result = subprocess.run(
        [
            chromium,
            "--headless",
            *offline_flags(profile),
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_docs_render_offline(
    make_stack: StackFactory, empty_model_dir: Path, tmp_path: Path
) -> None:
    stack = make_stack(empty_model_dir)
    gateway = stack.services[-1]
    stack.start(gateway, timeout_s=60)

    dom = render(f"{gateway.url}/docs", tmp_path / "profile")

    # Swagger UI built the page from /openapi.json: title, operations and schemas are there.
    assert 'class="swagger-ui"' in dom
    assert "BraNet" in dom
    assert "/v1/analyses/{analysis_id}" in dom
    assert "opblock-summary-method" in dom
    assert "Failed to load API definition" not in dom
