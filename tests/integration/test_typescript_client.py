"""The TypeScript client (clients/typescript) against the real gateway: its Node test creates,
reads, pages, downloads (with ETag) and deletes analyses through the generated types."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.images import gray_png
from tests.integration.conftest import StackFactory

pytestmark = pytest.mark.integration
CLIENT = Path(__file__).parents[2] / "clients" / "typescript"


def built_client() -> Path:
    """The compiled client and its test; skipped without Node, failed in CI (which has it)."""
    if shutil.which("npm") is None or not (CLIENT / "node_modules").exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the TypeScript client's test: `make typescript-client`")
        pytest.skip("Node.js or the client's npm packages are missing (make typescript-client)")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=CLIENT, check=True)
    return CLIENT


def test_the_typescript_client_works_against_the_gateway(
    make_stack: StackFactory, model_dir: Path, tmp_path: Path
) -> None:
    client = built_client()
    stack = make_stack(model_dir)
    stack.up(timeout_s=120)
    image = tmp_path / "scan.png"
    image.write_bytes(gray_png())

    run = subprocess.run(
        ["npm", "test", "--silent"],
        cwd=client,
        env={**os.environ, "BRANET_URL": stack.services[-1].url, "BRANET_TEST_IMAGE": str(image)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout
