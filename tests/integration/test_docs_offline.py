"""`/docs` renders in headless Chromium with every non-loopback address unreachable."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import StackFactory

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing; `make test` installs it (Debian package chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return found


def render(url: str, profile: Path) -> str:
    """The DOM after scripts ran, with the network cut off but for loopback."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            # No name resolves and every non-loopback connection goes to a dead proxy.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
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
