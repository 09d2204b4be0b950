"""End to end: three real service processes, an image through the gateway, a restart."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.images import gray_png
from tests.integration.conftest import StackFactory

pytestmark = pytest.mark.integration


def analyse(gateway: str, image: bytes) -> httpx.Response:
    return httpx.post(
        f"{gateway}/v1/analyses",
        files={"file": ("scan.png", image, "image/png")},
        data={"modality": "ultrasound"},
        timeout=60,
    )


def test_an_image_is_analysed_and_survives_a_restart(
    make_stack: StackFactory, model_dir: Path, tmp_path: Path
) -> None:
    stack = make_stack(model_dir)
    stack.up(timeout_s=120)
    gateway = stack.services[-1].url
    image = gray_png()

    created = analyse(gateway, image)

    assert created.status_code == 201, created.text
    analysis = created.json()
    assert analysis["models"]["classifier"]["name"] == "test-resnet18-ultrasound"
    assert created.headers["x-request-id"]

    stack.down()
    stack.up(timeout_s=120)

    fetched = httpx.get(f"{gateway}/v1/analyses/{analysis['id']}")
    assert fetched.json() == analysis
    assert httpx.get(f"{gateway}{analysis['image']['url']}").content == image
    assert httpx.get(f"{gateway}/readyz").json()["checks"]["classifier"]["ok"] is True

    deleted = httpx.delete(f"{gateway}/v1/analyses/{analysis['id']}")
    assert deleted.status_code == 204
    blobs = stack.home / "data" / "blobs"
    assert [p for p in blobs.rglob("*") if p.is_file() and p.name != ".check"] == []


def test_cli_analyze_prints_the_result(
    make_stack: StackFactory, model_dir: Path, tmp_path: Path
) -> None:
    stack = make_stack(model_dir)
    stack.up(timeout_s=120)
    image = tmp_path / "scan.png"
    image.write_bytes(gray_png())

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "branet_cli.main",
            "analyze",
            str(image),
            "--modality",
            "ultrasound",
            "--url",
            stack.services[-1].url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "scan.png: BENIGN" in result.stdout or "scan.png: MALIGNANT" in result.stdout
    assert "test-resnet18-ultrasound" in result.stdout
    assert "note (no_lesion_crop): " in result.stdout  # a whole image, and the CLI says so


def test_before_a_model_ships_the_answer_is_503(
    make_stack: StackFactory, empty_model_dir: Path
) -> None:
    stack = make_stack(empty_model_dir)
    stack.up(timeout_s=120)

    response = analyse(stack.services[-1].url, gray_png())

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "model_unavailable"
