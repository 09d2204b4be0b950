"""ROI extraction through the gateway, with a toy SAM of the package's own classes."""

import io
from pathlib import Path

import pytest
from PIL import Image

from branet_segmenter.settings import SegmenterSettings
from branet_shared.images import roi_crop
from branet_shared.schemas import BoundingBox
from tests.images import gray_png
from tests.models import write_toy_sam
from tests.unit.gateway.conftest import Gateway, GatewayFactory


@pytest.fixture
async def gateway_with_sam(make_gateway: GatewayFactory, sam_checkpoint: Path) -> Gateway:
    return await make_gateway(sam_checkpoint=sam_checkpoint)


async def test_box_prompt_stores_mask_and_crop_and_classifies_the_crop(
    gateway_with_sam: Gateway,
) -> None:
    gateway = gateway_with_sam
    response = await gateway.analyse(gray_png(), box="20,20,70,60")

    assert response.status_code == 201, response.text
    analysis = response.json()
    roi = analysis["roi"]
    assert roi["lesion_found"] is True
    assert roi["prompt"] == {"box": {"x0": 20, "y0": 20, "x1": 70, "y1": 60}, "points": []}
    assert analysis["models"]["segmenter"]["name"] == "sam_toy"
    assert analysis["timings"]["segment_ms"] is not None
    assert analysis["caveats"] == []  # a lesion crop, from a model whose card shows no chance

    mask = await gateway.client.get(roi["mask"]["url"])
    crop = await gateway.client.get(roi["crop"]["url"])
    assert mask.headers["content-type"] == crop.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(mask.content)).size == (96, 80)
    box = roi["bbox"]
    crop_size = Image.open(io.BytesIO(crop.content)).size
    assert crop_size[0] >= box["x1"] - box["x0"]
    assert crop_size[1] >= box["y1"] - box["y0"]
    assert len(gateway.stored_files()) == 3

    assert (await gateway.client.delete(f"/v1/analyses/{analysis['id']}")).status_code == 204
    assert gateway.stored_files() == []
    # What was classified is that crop: uploaded as it is, it gets the same answer.
    crop_uploaded = (await gateway.analyse(crop.content)).json()
    assert crop_uploaded["probabilities"] == analysis["probabilities"]


async def test_no_lesion_found_is_reported_not_an_error(gateway_with_sam: Gateway) -> None:
    response = await gateway_with_sam.analyse(gray_png(), extract_roi="true")

    assert response.status_code == 201
    analysis = response.json()
    assert analysis["roi"]["lesion_found"] is False
    assert analysis["roi"]["mask"] is None
    assert analysis["label"] in ("benign", "malignant")
    assert [c["code"] for c in analysis["caveats"]] == ["no_lesion_crop"]
    assert "found no lesion" in analysis["caveats"][0]["detail"]
    mask = await gateway_with_sam.client.get(f"/v1/analyses/{analysis['id']}/mask")
    assert mask.status_code == 404


async def test_point_prompts_are_passed_to_sam(gateway_with_sam: Gateway) -> None:
    response = await gateway_with_sam.analyse(gray_png(), points="48,40,1;5,5,0")

    assert response.status_code == 201, response.text
    prompt = response.json()["roi"]["prompt"]
    assert prompt["points"] == [{"x": 48, "y": 40, "label": 1}, {"x": 5, "y": 5, "label": 0}]


@pytest.mark.parametrize("points", ["1,2,3", "1", "500,5,1", "a,b"])
async def test_bad_points_are_invalid_parameters(gateway_with_sam: Gateway, points: str) -> None:
    response = await gateway_with_sam.analyse(gray_png(), points=points)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"
    assert gateway_with_sam.stored_files() == []


async def test_a_box_sam_finds_nothing_in_is_classified_as_the_lesion_crop(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gateway = await make_gateway(sam_checkpoint=write_toy_sam(tmp_path, blind=True))
    response = await gateway.analyse(gray_png(), box="20,20,70,60")

    assert response.status_code == 201, response.text
    analysis = response.json()
    roi = analysis["roi"]
    assert roi["lesion_found"] is False
    assert roi["mask"] is None
    assert roi["bbox"] == {"x0": 20, "y0": 20, "x1": 70, "y1": 60}
    # The caller's box (with the usual margin) was classified: no "whole image" caveat.
    assert analysis["caveats"] == []
    crop = await gateway.client.get(roi["crop"]["url"])
    margin = SegmenterSettings().roi_margin
    expected = roi_crop(Image.open(io.BytesIO(gray_png())), BoundingBox(**roi["bbox"]), margin)
    assert Image.open(io.BytesIO(crop.content)).convert("L").tobytes() == expected.tobytes()
