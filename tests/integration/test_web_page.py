"""The clinician's page in a real browser, against the stack as `make up` starts it with the
shipped models: an image in, a box drawn, the result with its mask, the heatmap, the history,
a delete; a DICOM file measured in millimetres; errors before and after upload.

Screenshots at phone and desktop width land in $BRANET_SCREENSHOT_DIR (`make screenshots`
writes docs/screenshots/), else in the test's temporary folder."""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from branet_cli.stack import Stack
from tests.dicom_files import PATIENT_ID, PATIENT_NAME, gray_dicom
from tests.firebase_identity import IdentityServer, identity_server
from tests.images import gray_png, lesion_array
from tests.integration.browser import (
    DESKTOP,
    PHONE,
    full_page_png,
    offline_chromium,
    page_errors,
    show_as,
    wait_for,
)
from tests.integration.conftest import start_stack

pytestmark = [pytest.mark.integration, pytest.mark.browser]
SHIPPED = Path(__file__).parents[2] / "models"
OUTLINE_RGB = (0, 229, 255)  # result.js: the mask's edge


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("page"), SHIPPED)
    stack.up(timeout_s=300)
    yield stack
    stack.down()


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> str:
    return stack.services[-1].url


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from offline_chromium(tmp_path_factory.mktemp("profile"))


@pytest.fixture
def page(chrome: webdriver.Chrome, gateway: str) -> Iterator[webdriver.Chrome]:
    """The page, loaded afresh at phone size; it must have logged no error when done."""
    show_as(chrome, PHONE)
    chrome.get(f"{gateway}/")
    wait_for(chrome, "!document.getElementById('app').hidden", 15)
    yield chrome
    assert page_errors(chrome) == []


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("BRANET_SCREENSHOT_DIR")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def by_id(chrome: webdriver.Chrome, element_id: str) -> WebElement:
    return chrome.find_element(By.ID, element_id)


def choose_file(chrome: webdriver.Chrome, path: Path) -> None:
    by_id(chrome, "file").send_keys(str(path))


def start_and_wait(chrome: webdriver.Chrome, container: str = "result") -> str:
    """Press Start; the id of the analysis once its image is drawn (or the error's words)."""
    by_id(chrome, "start").click()
    wait_for(
        chrome,
        f"document.querySelector('#{container} canvas')?.dataset.drawn"
        " || !document.getElementById('error').hidden",
        120,
    )
    error = by_id(chrome, "error")
    assert not error.is_displayed(), error.text
    return str(by_id(chrome, container).get_attribute("data-analysis-id"))


def outline_pixels(chrome: webdriver.Chrome, container: str) -> int:
    """Pixels of the drawn image in the mask outline's colour."""
    count = chrome.execute_script(
        """
        const canvas = document.querySelector(`#${arguments[0]} canvas`);
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
          if (r === arguments[1] && g === arguments[2] && b === arguments[3]) n++;
        }
        return n;
        """,
        container,
        *OUTLINE_RGB,
    )
    return int(count)


def drag_box(chrome: webdriver.Chrome, fractions: tuple[float, float, float, float]) -> None:
    """Drag on the preview from one corner to the other, given as fractions of its size."""
    canvas = by_id(chrome, "prompt-canvas")
    chrome.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    rect = canvas.rect
    x0, y0, x1, y1 = fractions
    # Offsets are from the element's centre.
    start = ((x0 - 0.5) * rect["width"], (y0 - 0.5) * rect["height"])
    (
        ActionChains(chrome)
        .move_to_element_with_offset(canvas, int(start[0]), int(start[1]))
        .click_and_hold()
        .move_by_offset(int((x1 - x0) * rect["width"]), int((y1 - y0) * rect["height"]))
        .release()
        .perform()
    )


def tap(chrome: webdriver.Chrome, x: float, y: float) -> None:
    """Tap the preview at these fractions of its size."""
    canvas = by_id(chrome, "prompt-canvas")
    rect = canvas.rect
    offset = (int((x - 0.5) * rect["width"]), int((y - 0.5) * rect["height"]))
    ActionChains(chrome).move_to_element_with_offset(canvas, *offset).click().perform()


def show_heatmap(chrome: webdriver.Chrome) -> WebElement:
    """Toggle the heatmap on; the toggle, to turn it off again."""
    toggle = chrome.find_element(By.CSS_SELECTOR, "#result .heatmap-toggle")
    toggle.click()
    wait_for(chrome, "document.querySelector('#result .heatmap').naturalWidth > 0")
    assert chrome.find_element(By.CSS_SELECTOR, "#result .heatmap").is_displayed()
    assert not chrome.find_element(By.CSS_SELECTOR, "#result canvas").is_displayed()
    return toggle


def find_open_and_delete(
    chrome: webdriver.Chrome, gateway: str, analysis_id: str, screenshot: Path | None = None
) -> None:
    """In History: the analysis first, with its thumbnail; opened with its outline; deleted
    only once the deletion is confirmed."""
    by_id(chrome, "tab-history").click()
    row = f"#history-list li[data-id='{analysis_id}']"
    wait_for(chrome, f'document.querySelector("{row} img")?.naturalWidth > 0')
    newest = chrome.execute_script("return document.querySelector('#history-list li').dataset.id")
    assert newest == analysis_id
    chrome.find_element(By.CSS_SELECTOR, f"{row} .open").click()
    wait_for(chrome, "document.querySelector('#history-detail canvas')?.dataset.drawn")
    assert outline_pixels(chrome, "history-detail") > 100
    if screenshot:
        full_page_png(chrome, screenshot)

    chrome.find_element(By.CSS_SELECTOR, f"{row} .delete").click()
    assert by_id(chrome, "confirm-delete").is_displayed()
    by_id(chrome, "confirm-delete-cancel").click()  # asked, declined: nothing happens
    assert httpx.get(f"{gateway}/v1/analyses/{analysis_id}").status_code == 200
    chrome.find_element(By.CSS_SELECTOR, f"{row} .delete").click()
    by_id(chrome, "confirm-delete-yes").click()
    wait_for(chrome, f'!document.querySelector("{row}")')

    assert httpx.get(f"{gateway}/v1/analyses/{analysis_id}").status_code == 404
    assert not by_id(chrome, "history-detail").is_displayed()


def test_an_image_is_marked_analysed_found_in_history_and_deleted(
    page: webdriver.Chrome, gateway: str, tmp_path: Path, screenshots: Path
) -> None:
    image = tmp_path / "scan.png"
    image.write_bytes(gray_png(320, 260))
    choose_file(page, image)
    wait_for(page, "!document.getElementById('prompt-canvas').hidden")
    drag_box(page, (0.25, 0.25, 0.75, 0.75))
    page.find_element(By.CSS_SELECTOR, "input[name=tool][value=lesion]").click()
    tap(page, 0.5, 0.5)
    assert "box 160 × 130 px" in by_id(page, "prompt-summary").text
    assert "1 lesion point" in by_id(page, "prompt-summary").text
    by_id(page, "extract-roi").click()

    analysis_id = start_and_wait(page)

    analysis = httpx.get(f"{gateway}/v1/analyses/{analysis_id}").json()
    prompt = analysis["roi"]["prompt"]
    # What was drawn is what was sent, in the image's pixels (the page's layout scales it).
    box = (prompt["box"]["x0"], prompt["box"]["y0"], prompt["box"]["x1"], prompt["box"]["y1"])
    assert box == pytest.approx((80, 65, 240, 195), abs=4)
    [point] = prompt["points"]
    assert (point["x"], point["y"], point["label"]) == pytest.approx((160, 130, 1), abs=4)
    assert analysis["roi"]["lesion_found"] is True
    result = by_id(page, "result").text
    assert analysis["label"].capitalize() in result
    assert f"{analysis['probabilities']['malignant'] * 100:.1f} %" in result
    assert "calls an image malignant when P(malignant) is at least" in result
    assert "branet-resnet18-ultrasound" in result
    assert "branet-lesion-sam" in result
    size = analysis["roi"]["size"]
    assert f"{size['width_px']} × {size['height_px']} px" in result
    assert outline_pixels(page, "result") > 100
    full_page_png(page, screenshots / "analysis-phone.png")

    toggle = show_heatmap(page)
    show_as(page, DESKTOP)
    full_page_png(page, screenshots / "analysis-desktop.png")
    toggle.click()

    find_open_and_delete(page, gateway, analysis_id, screenshots / "history-desktop.png")


def test_a_dicom_file_is_analysed_in_millimetres_and_names_no_patient(
    page: webdriver.Chrome, gateway: str, stack: Stack, tmp_path: Path
) -> None:
    upload = tmp_path / "study.dcm"
    upload.write_bytes(gray_dicom(lesion_array(320, 260).astype(np.uint16) * 200))  # 16-bit
    choose_file(page, upload)
    wait_for(page, "!document.getElementById('preview').hidden")
    assert "DICOM file" in by_id(page, "prompt-summary").text
    by_id(page, "extract-roi").click()

    analysis_id = start_and_wait(page)

    analysis = httpx.get(f"{gateway}/v1/analyses/{analysis_id}").json()
    size = analysis["roi"]["size"]
    assert size["width_mm"] == pytest.approx(size["width_px"] * 0.2)  # columns are 0.2 mm apart
    result = by_id(page, "result").text
    assert f"{size['width_mm']:.1f} mm wide" in result
    assert "ACME Ultrasound" in result
    assert "0.1 × 0.2 mm" in result
    assert outline_pixels(page, "result") > 100
    show_heatmap(page)
    stored = b"".join(p.read_bytes() for p in (stack.home / "data").rglob("*") if p.is_file())
    logs = b"".join(p.read_bytes() for p in (stack.home / "logs").rglob("*") if p.is_file())
    for identifier in (PATIENT_NAME, PATIENT_ID, "19700101", "study.dcm"):
        assert identifier.encode() not in stored, identifier
        assert identifier.encode() not in logs, identifier

    find_open_and_delete(page, gateway, analysis_id)


def test_the_page_checks_before_uploading_and_words_the_apis_refusals(
    page: webdriver.Chrome, gateway: str, tmp_path: Path
) -> None:
    before = httpx.get(f"{gateway}/v1/analyses").json()["items"]
    too_large = tmp_path / "large.png"
    too_large.write_bytes(gray_png()[:64] + bytes(11 * 1024 * 1024))
    choose_file(page, too_large)
    wait_for(page, "!document.getElementById('error').hidden")
    assert "at most 10 MB" in by_id(page, "error").text

    not_an_image = tmp_path / "notes.png"  # named like an image, is not one
    not_an_image.write_bytes(b"%PDF-1.7\n" + bytes(200))
    choose_file(page, not_an_image)
    wait_for(page, "document.getElementById('error').textContent.includes('not a PNG')")

    truncated = tmp_path / "cut.png"
    truncated.write_bytes(gray_png()[:300])  # passes the page's check; the gateway refuses it
    choose_file(page, truncated)
    wait_for(page, "document.getElementById('error').hidden")
    by_id(page, "start").click()
    wait_for(page, "!document.getElementById('error').hidden")
    assert len(page_errors(page)) == 1  # the 422 itself, logged as a failed load: expected
    refusal = httpx.post(
        f"{gateway}/v1/analyses",
        files={"file": ("cut.png", truncated.read_bytes(), "image/png")},
        data={"modality": "ultrasound"},
    )
    assert refusal.status_code == 422
    assert by_id(page, "error").text == refusal.json()["detail"]  # as the API words it

    assert httpx.get(f"{gateway}/v1/analyses").json()["items"] == before


PROJECT = "branet-page-test"
EMAIL, PASSWORD = "clinician@example.org", "correct horse battery staple"


@pytest.fixture(scope="module")
def identity() -> Iterator[IdentityServer]:
    with identity_server(PROJECT, {EMAIL: ("clinician-1", PASSWORD)}) as server:
        yield server


@pytest.fixture(scope="module")
def firebase_gateway(
    identity: IdentityServer, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The stack with Firebase auth, its page signing in at the local identity server."""
    stack = start_stack(
        tmp_path_factory.mktemp("firebase"),
        model_dir,
        GATEWAY_AUTH_MODE="firebase",
        GATEWAY_FIREBASE_PROJECT_ID=PROJECT,
        GATEWAY_FIREBASE_CERTIFICATES_URL=identity.certificates_url,
        GATEWAY_FIREBASE_API_KEY="test-web-api-key",
        GATEWAY_FIREBASE_AUTH_EMULATOR_URL=identity.url,
    )
    stack.up(timeout_s=120)
    yield stack.services[-1].url
    stack.down()


def test_a_clinician_signs_in_analyses_as_themselves_and_signs_out(
    chrome: webdriver.Chrome, firebase_gateway: str, identity: IdentityServer, tmp_path: Path
) -> None:
    show_as(chrome, PHONE)
    chrome.get(f"{firebase_gateway}/")
    wait_for(chrome, "!document.getElementById('sign-in').hidden", 15)
    assert not by_id(chrome, "app").is_displayed()
    by_id(chrome, "sign-in-email").send_keys(EMAIL)
    by_id(chrome, "sign-in-password").send_keys("wrong")
    by_id(chrome, "sign-in-submit").click()
    wait_for(chrome, "!document.getElementById('error').hidden")
    assert by_id(chrome, "error").text == "The email or password is not right."
    assert len(page_errors(chrome)) == 1  # the refused sign-in, logged as a failed load

    by_id(chrome, "sign-in-password").clear()
    by_id(chrome, "sign-in-password").send_keys(PASSWORD)
    by_id(chrome, "sign-in-submit").click()
    wait_for(chrome, "!document.getElementById('app').hidden", 15)
    assert by_id(chrome, "account-name").text == EMAIL
    image = tmp_path / "scan.png"
    image.write_bytes(gray_png())
    choose_file(chrome, image)
    analysis_id = start_and_wait(chrome)

    token = {"Authorization": f"Bearer {identity.id_token('clinician-1', EMAIL)}"}
    mine = httpx.get(f"{firebase_gateway}/v1/analyses/{analysis_id}", headers=token)
    assert mine.json()["owner"] == "clinician-1"
    assert httpx.get(f"{firebase_gateway}/v1/analyses/{analysis_id}").status_code == 401
    other = {"Authorization": f"Bearer {identity.id_token('someone-else', 'x@example.org')}"}
    assert (
        httpx.get(f"{firebase_gateway}/v1/analyses/{analysis_id}", headers=other).status_code == 404
    )

    by_id(chrome, "sign-out").click()
    wait_for(chrome, "!document.getElementById('sign-in').hidden")
    assert not by_id(chrome, "app").is_displayed()
    assert page_errors(chrome) == []
