"""Headless Chromium (Debian's) driven by Selenium through Debian's chromedriver, with every
address but loopback unreachable: what the page needs must come from the gateway itself."""

import base64
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

PHONE = (390, 844)  # CSS pixels, as an iPhone 12-15 shows a page
DESKTOP = (1280, 900)


def browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        message = "Chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; `make test` installs both")
        pytest.skip(message)
    return chromium, driver


def offline_flags(profile: Path) -> tuple[str, ...]:
    """Chromium without a GPU, sandbox, first-run or background traffic, and cut off from
    everything but loopback."""
    return (
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
    )


def offline_chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    chromium, driver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (*offline_flags(profile), "--headless=new"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_script_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


def show_as(chrome: webdriver.Chrome, size: tuple[int, int]) -> None:
    """Lay the page out at `size` CSS pixels, as a phone (touch, 3× pixels) or a desktop."""
    width, height = size
    phone = size == PHONE
    chrome.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 2 if phone else 1, "mobile": phone},
    )
    chrome.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": phone})


def full_page_png(chrome: webdriver.Chrome, path: Path) -> None:
    """The whole page, not only the viewport: a screenshot beyond it, of the content's size."""
    metrics = chrome.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content = metrics["cssContentSize"]
    shot = chrome.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {
                "x": 0,
                "y": 0,
                "width": content["width"],
                "height": content["height"],
                "scale": 1,
            },
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # 128 colours: a third of the bytes for the README, the page's text as sharp.
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    image.quantize(128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def wait_for(chrome: webdriver.Chrome, condition: str, timeout_s: float = 60) -> object:
    """Wait until the JavaScript expression `condition` is truthy; its value."""
    return WebDriverWait(chrome, timeout_s, poll_frequency=0.1).until(
        lambda driver: driver.execute_script(f"return {condition}")
    )


def visible(element: WebElement) -> bool:
    return element.is_displayed()


def page_errors(chrome: webdriver.Chrome) -> list[str]:
    """What the page logged as errors since last asked: CSP refusals, failed loads, uncaught
    exceptions."""
    entries: list[dict[str, str]] = chrome.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]
