"""The app's own flow on a fresh clone: tick "Extract masks and regions of interest", press
Start. The stack as `make up` starts it, with the shipped models (models/), answers with the
lesion's mask, box and crop, and the crop's classification."""

from pathlib import Path

import httpx
import pytest

from tests.images import gray_png
from tests.integration.conftest import StackFactory

pytestmark = pytest.mark.integration
SHIPPED = Path(__file__).parents[2] / "models"


def test_automatic_roi_finds_the_lesion_with_the_shipped_models(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(SHIPPED)
    stack.up(timeout_s=300)
    gateway = stack.services[-1].url
    ready = httpx.get(f"{gateway}/readyz").json()
    assert ready["checks"]["segmenter"]["ok"] is True, ready

    created = httpx.post(
        f"{gateway}/v1/analyses",
        files={"file": ("scan.png", gray_png(320, 260), "image/png")},
        data={"modality": "ultrasound", "extract_roi": "true"},
        timeout=120,
    )

    assert created.status_code == 201, created.text
    analysis = created.json()
    roi = analysis["roi"]
    assert roi["lesion_found"] is True
    # The generated lesion is the dark oval in the middle: its box holds the image's centre.
    box = roi["bbox"]
    assert box["x0"] < 160 < box["x1"]
    assert box["y0"] < 130 < box["y1"]
    assert roi["mask"]["url"]
    assert roi["crop"]["url"]
    assert analysis["models"]["segmenter"]["name"] == "branet-lesion-sam"
    assert analysis["label"] in {"benign", "malignant"}
    assert not [c for c in analysis["caveats"] if c["code"] == "no_lesion_crop"]
