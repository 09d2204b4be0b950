"""DICOM through the API, no identifier kept anywhere, and the lesion measured in mm."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.dicom_files import PATIENT_ID, PATIENT_NAME, gray_dicom
from tests.images import gray_png, lesion_array
from tests.unit.gateway.conftest import Gateway, GatewayFactory

LESION = (lesion_array(96, 80).astype(np.uint16) * 40).astype(np.uint16)


async def send_dicom(gateway: Gateway, data: bytes, **fields: str) -> dict:  # type: ignore[type-arg]
    response = await gateway.client.post(
        "/v1/analyses",
        files={"file": ("study.dcm", data, "application/dicom")},
        data={"modality": "ultrasound", **fields},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def gateway_with_sam(make_gateway: GatewayFactory, sam_checkpoint: Path) -> Gateway:
    return await make_gateway(sam_checkpoint=sam_checkpoint)


async def test_a_dicom_file_is_analysed_as_its_rendered_frame(gateway: Gateway) -> None:
    analysis = await send_dicom(gateway, gray_dicom(LESION))

    stored = await gateway.client.get(analysis["image"]["url"])
    assert analysis["image"]["content_type"] == "image/png"
    assert Image.open(io.BytesIO(stored.content)).size == (96, 80)
    assert analysis["dicom"]["pixel_spacing_mm"] == [0.1, 0.2]
    assert analysis["dicom"]["modality"] == "US"


async def test_no_patient_identifier_is_stored_or_answered(gateway: Gateway) -> None:
    analysis = await send_dicom(gateway, gray_dicom(LESION))

    listed = await gateway.client.get("/v1/analyses")
    files = [path for path in gateway.data_dir.rglob("*") if path.is_file()]
    everything = b"".join(path.read_bytes() for path in files)  # blobs and the SQLite file
    for identifier in (PATIENT_NAME, PATIENT_ID, "19700101", "DOE"):
        assert identifier not in str(analysis)
        assert identifier not in listed.text
        assert identifier.encode() not in everything


async def test_the_lesion_is_measured_with_the_files_spacing(gateway_with_sam: Gateway) -> None:
    analysis = await send_dicom(gateway_with_sam, gray_dicom(LESION), box="20,20,70,60")

    size = analysis["roi"]["size"]
    assert size["measured_on"] == "mask"
    box = analysis["roi"]["bbox"]
    assert (size["width_px"], size["height_px"]) == (box["x1"] - box["x0"], box["y1"] - box["y0"])
    assert size["width_mm"] == pytest.approx(size["width_px"] * 0.2)  # column spacing
    assert size["height_mm"] == pytest.approx(size["height_px"] * 0.1)  # row spacing
    assert size["area_mm2"] == pytest.approx(analysis["roi"]["area"] * 0.02, abs=0.01)


async def test_a_png_gets_millimetres_from_the_callers_spacing(gateway_with_sam: Gateway) -> None:
    plain = (await gateway_with_sam.analyse(gray_png(), box="20,20,70,60")).json()
    measured = (
        await gateway_with_sam.analyse(gray_png(), box="20,20,70,60", pixel_spacing="0.05,0.05")
    ).json()

    assert plain["roi"]["size"]["width_mm"] is None  # pixels always, mm only with a spacing
    assert plain["roi"]["size"]["width_px"] > 0
    assert measured["roi"]["size"]["width_mm"] == pytest.approx(
        measured["roi"]["size"]["width_px"] * 0.05
    )


@pytest.mark.parametrize("spacing", ["0,1", "a,b", "1", "12,0.1", "٠.١,0.1"])
async def test_a_bad_spacing_is_refused(gateway: Gateway, spacing: str) -> None:
    response = await gateway.analyse(gray_png(), pixel_spacing=spacing)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"
