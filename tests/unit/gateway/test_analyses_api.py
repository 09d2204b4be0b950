"""The public /v1/analyses API against the real classifier, in-process."""

import io
from pathlib import Path

import pytest
from PIL import Image

from branet_gateway.storage.sqlite import SQLiteResultStore
from branet_shared.images import roi_crop
from branet_shared.schemas import BoundingBox
from tests.images import encode, gray_png, lesion_array, png_bomb
from tests.models import write_classifier
from tests.unit.gateway.conftest import Gateway, GatewayFactory

PROBLEM = "application/problem+json"


async def test_analysis_is_created_with_a_real_classification(
    gateway: Gateway, png_bytes: bytes
) -> None:
    response = await gateway.analyse(png_bytes)

    assert response.status_code == 201, response.text
    analysis = response.json()
    assert response.headers["location"] == f"/v1/analyses/{analysis['id']}"
    assert analysis["label"] in ("benign", "malignant")
    probs = analysis["probabilities"]
    assert probs["benign"] + probs["malignant"] == pytest.approx(1.0)
    assert analysis["confidence"] == max(probs.values())
    assert analysis["label"] == max(probs, key=probs.__getitem__)
    assert analysis["modality"] == "ultrasound"
    assert analysis["roi"] is None
    # Classified as uploaded, not as a lesion crop: the answer says so.
    assert [caveat["code"] for caveat in analysis["caveats"]] == ["no_lesion_crop"]
    classifier = analysis["models"]["classifier"]
    assert (classifier["name"], classifier["version"]) == ("test-resnet18-ultrasound", "0.0.0")
    assert len(classifier["sha256"]) == 64
    assert analysis["image"]["width"] == 96
    assert analysis["image"]["height"] == 80
    assert analysis["created_at"]


async def test_a_model_no_better_than_chance_puts_its_caveat_on_the_analysis(
    make_gateway: GatewayFactory, tmp_path: Path, png_bytes: bytes
) -> None:
    chance = {"cv_roc_auc_ci95_low": 0.44, "cv_roc_auc_ci95_high": 0.66}
    write_classifier(tmp_path, "ultrasound", metrics=chance)
    gateway = await make_gateway(models=tmp_path)

    analysis = (await gateway.analyse(png_bytes)).json()

    codes = [caveat["code"] for caveat in analysis["caveats"]]
    assert codes == ["model_at_chance", "no_lesion_crop"]
    fetched = (await gateway.client.get(f"/v1/analyses/{analysis['id']}")).json()
    assert fetched["caveats"] == analysis["caveats"]
    models = (await gateway.client.get("/v1/models")).json()["models"]
    listed = next(m for m in models if m["modality"] == "ultrasound")
    assert listed["caveats"] == analysis["caveats"][:1]


async def test_get_returns_what_post_returned(gateway: Gateway, png_bytes: bytes) -> None:
    created = (await gateway.analyse(png_bytes)).json()

    fetched = await gateway.client.get(f"/v1/analyses/{created['id']}")

    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_image_endpoint_streams_the_uploaded_bytes(gateway: Gateway) -> None:
    jpeg = encode(Image.fromarray(lesion_array()), "JPEG", quality=90)
    created = (await gateway.analyse(jpeg)).json()

    response = await gateway.client.get(created["image"]["url"])

    assert response.status_code == 200
    assert response.content == jpeg
    assert response.headers["content-type"] == "image/jpeg"
    assert created["image"]["format"] == "jpeg"
    assert response.headers["content-length"] == str(len(jpeg))
    assert response.headers["etag"] == f'"{created["image"]["sha256"]}"'
    assert response.headers["cache-control"].startswith("private")  # never a shared cache


async def test_a_blob_already_held_is_not_sent_again(gateway: Gateway, png_bytes: bytes) -> None:
    url = (await gateway.analyse(png_bytes)).json()["image"]["url"]
    etag = (await gateway.client.get(url)).headers["etag"]

    for held in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await gateway.client.get(url, headers={"If-None-Match": held})
        assert again.status_code == 304, held
        assert again.content == b""
        assert again.headers["etag"] == etag
    changed = await gateway.client.get(url, headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200
    assert changed.content == png_bytes


async def test_head_gives_a_blobs_headers_without_its_body(
    gateway: Gateway, png_bytes: bytes
) -> None:
    url = (await gateway.analyse(png_bytes)).json()["image"]["url"]

    head = await gateway.client.head(url)

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(png_bytes))
    assert head.headers["content-type"] == "image/png"
    assert head.headers["etag"] == (await gateway.client.get(url)).headers["etag"]
    assert (await gateway.client.head(url.replace("/image", "/mask"))).status_code == 404


async def test_analysis_without_roi_has_no_mask(gateway: Gateway, png_bytes: bytes) -> None:
    created = (await gateway.analyse(png_bytes)).json()

    for kind in ("mask", "roi"):
        response = await gateway.client.get(f"/v1/analyses/{created['id']}/{kind}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_history_pages_newest_first_without_gaps(gateway: Gateway, png_bytes: bytes) -> None:
    created = [(await gateway.analyse(png_bytes)).json()["id"] for _ in range(25)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        page = (await gateway.client.get("/v1/analyses", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert seen == list(reversed(created))


async def test_delete_removes_record_and_blobs(gateway: Gateway, png_bytes: bytes) -> None:
    keep = (await gateway.analyse(png_bytes)).json()
    gone = (await gateway.analyse(png_bytes)).json()
    assert len(gateway.stored_files()) == 2

    response = await gateway.client.delete(f"/v1/analyses/{gone['id']}")

    assert response.status_code == 204
    assert (await gateway.client.get(f"/v1/analyses/{gone['id']}")).status_code == 404
    assert (await gateway.client.get(gone["image"]["url"])).status_code == 404
    assert len(gateway.stored_files()) == 1
    assert (await gateway.client.get(keep["image"]["url"])).status_code == 200
    again = await gateway.client.delete(f"/v1/analyses/{gone['id']}")
    assert again.status_code == 404


async def test_everything_survives_a_restart(
    make_gateway: GatewayFactory, tmp_path: Path, png_bytes: bytes
) -> None:
    data_dir = tmp_path / "durable"
    first = await make_gateway(data_dir=data_dir)
    created = (await first.analyse(png_bytes)).json()

    second = await make_gateway(data_dir=data_dir)

    assert (await second.client.get(f"/v1/analyses/{created['id']}")).json() == created
    assert (await second.client.get(created["image"]["url"])).content == png_bytes


async def test_other_users_analyses_are_invisible(gateway: Gateway, png_bytes: bytes) -> None:
    created = (await gateway.analyse(png_bytes)).json()
    gateway.act_as("someone-else")

    assert (await gateway.client.get(f"/v1/analyses/{created['id']}")).status_code == 404
    assert (await gateway.client.get(created["image"]["url"])).status_code == 404
    assert (await gateway.client.get("/v1/analyses")).json()["items"] == []
    assert (await gateway.client.delete(f"/v1/analyses/{created['id']}")).status_code == 404
    gateway.act_as(None)
    assert (await gateway.client.get(f"/v1/analyses/{created['id']}")).status_code == 200


TEXT_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
GIF = encode(Image.new("P", (8, 8)), "GIF")


@pytest.mark.parametrize(
    ("fields", "file", "status", "code"),
    [
        ({}, ("a.gif", GIF), 415, "unsupported_media_type"),
        ({}, ("report.png", TEXT_PDF), 415, "unsupported_media_type"),
        ({}, ("cut.png", gray_png()[:-200]), 422, "invalid_image"),
        ({}, ("empty.png", b""), 422, "invalid_image"),
        ({}, ("big.png", gray_png() + b"\0" * (11 * 1024 * 1024)), 413, "payload_too_large"),
        ({}, ("bomb.png", png_bomb()), 422, "invalid_image"),
        ({}, None, 422, "invalid_parameter"),
        ({"modality": "xray"}, ("a.png", gray_png()), 422, "invalid_parameter"),
        ({"box": "1,2,3"}, ("a.png", gray_png()), 422, "invalid_parameter"),
        ({"box": "10,10,5,5"}, ("a.png", gray_png()), 422, "invalid_parameter"),
        ({"box": "0,0,500,500"}, ("a.png", gray_png()), 422, "invalid_parameter"),
        ({"extract_roi": "maybe"}, ("a.png", gray_png()), 422, "invalid_parameter"),
    ],
    ids=[
        "gif",
        "pdf-named-png",
        "truncated-png",
        "empty-file",
        "11-mb",
        "png-bomb",
        "missing-file",
        "unknown-modality",
        "box-three-numbers",
        "box-reversed",
        "box-outside-image",
        "extract-roi-not-bool",
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    gateway: Gateway,
    fields: dict[str, str],
    file: tuple[str, bytes] | None,
    status: int,
    code: str,
) -> None:
    files = {"file": (file[0], file[1], "image/png")} if file else None
    response = await gateway.client.post(
        "/v1/analyses", files=files, data={"modality": "ultrasound", **fields}
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["detail"]
    assert gateway.stored_files() == []
    assert (await gateway.client.get("/v1/analyses")).json()["items"] == []


async def test_without_a_model_the_answer_is_503_not_a_label(
    make_gateway: GatewayFactory, empty_model_dir: Path, png_bytes: bytes
) -> None:
    gateway = await make_gateway(models=empty_model_dir)

    response = await gateway.analyse(png_bytes)

    assert response.status_code == 503
    problem = response.json()
    assert problem["code"] == "model_unavailable"
    assert "ultrasound" in problem["detail"]
    assert gateway.stored_files() == []


async def test_automatic_roi_without_sam_is_503_and_stores_nothing(
    gateway: Gateway, png_bytes: bytes
) -> None:
    response = await gateway.analyse(png_bytes, extract_roi="true")

    assert response.status_code == 503
    assert response.json()["code"] == "model_unavailable"
    assert "SEGMENTER_CHECKPOINT" in response.json()["detail"]
    assert gateway.stored_files() == []


async def test_a_box_without_sam_classifies_the_box_as_drawn_and_says_so(
    gateway: Gateway, png_bytes: bytes
) -> None:
    response = await gateway.analyse(png_bytes, box="10,10,60,60")

    assert response.status_code == 201, response.text
    analysis = response.json()
    assert analysis["roi"]["lesion_found"] is False
    assert analysis["roi"]["bbox"] == {"x0": 10, "y0": 10, "x1": 60, "y1": 60}
    assert analysis["models"]["segmenter"] is None
    [caveat] = analysis["caveats"]
    assert caveat["code"] == "segmenter_unavailable"
    assert "SEGMENTER_CHECKPOINT" in caveat["detail"]
    # What was classified is the box with the model's context, as if uploaded cropped.
    box = BoundingBox(x0=10, y0=10, x1=60, y1=60)
    crop = roi_crop(Image.open(io.BytesIO(png_bytes)), box, margin=0.25)
    cropped = (await gateway.analyse(encode(crop))).json()
    assert cropped["probabilities"] == analysis["probabilities"]


async def test_failed_record_write_leaves_no_orphan_blobs(
    gateway: Gateway, png_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_add(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(SQLiteResultStore, "add", broken_add)

    response = await gateway.analyse(png_bytes)

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "disk full" not in response.text
    assert gateway.stored_files() == []


async def test_malformed_cursor_is_a_clear_error(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/analyses", params={"cursor": "not-a-cursor"})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"


async def test_unknown_ids_are_404(gateway: Gateway) -> None:
    for path in (
        "/v1/analyses/deadbeef",
        "/v1/analyses/../etc/passwd",
        "/v1/analyses/x%2F..%2Fy/image",
    ):
        response = await gateway.client.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_declared_oversized_body_is_refused_before_reading(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/analyses",
        content=b"x" * 16,
        headers={"content-length": str(50 * 1024 * 1024), "content-type": "multipart/form-data"},
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_responses_carry_a_request_id(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/analyses/unknown", headers={"X-Request-ID": "abc-123"})

    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


async def test_explain_stores_a_heatmap_of_the_decision(gateway: Gateway, png_bytes: bytes) -> None:
    response = await gateway.analyse(png_bytes, explain="true")

    assert response.status_code == 201
    analysis = response.json()
    heatmap = await gateway.client.get(analysis["heatmap"]["url"])
    assert heatmap.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(heatmap.content)).size == (96, 80)
    assert len(gateway.stored_files()) == 2
    assert analysis["models"]["classifier"]["sha256"]


async def test_without_explain_there_is_no_heatmap(gateway: Gateway, png_bytes: bytes) -> None:
    analysis = (await gateway.analyse(png_bytes)).json()

    assert analysis["heatmap"] is None
    response = await gateway.client.get(f"/v1/analyses/{analysis['id']}/heatmap")
    assert response.status_code == 404
