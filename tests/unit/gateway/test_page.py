"""The clinician's page as the gateway serves it: every file it names is here, nothing runs
inline, and its policy lets it reach this origin (and Firebase's sign-in) only."""

import re
from html.parser import HTMLParser

import pytest
from pydantic import ValidationError

from branet_gateway.page import WEB_DIR
from branet_gateway.settings import GatewaySettings
from tests.unit.gateway.conftest import Gateway, GatewayFactory

IMPORT = re.compile(r"""(?:import|from)\s*\(?\s*["']([^"']+)["']""")


class Tags(HTMLParser):
    """What the page loads, and whatever a strict policy would refuse to run."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for attribute in ("src", "href"):
            if named.get(attribute):
                self.urls.append(str(named[attribute]))
        if tag == "script" and not named.get("src"):
            self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [
            f"{tag} {name}=" for name, _ in attrs if name == "style" or name.startswith("on")
        ]


def page_tags() -> Tags:
    tags = Tags()
    tags.feed((WEB_DIR / "index.html").read_text())
    return tags


def test_the_page_has_no_inline_script_or_style() -> None:
    assert page_tags().inline == []


async def test_every_file_the_page_names_is_served(gateway: Gateway) -> None:
    page = await gateway.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")

    for url in page_tags().urls:
        served = await gateway.client.get(url)
        assert served.status_code == 200, url


def test_every_module_import_resolves() -> None:
    scripts = sorted((WEB_DIR / "js").glob("*.js"))
    assert scripts
    for script in scripts:
        for target in IMPORT.findall(script.read_text()):
            assert (script.parent / target).resolve().is_file(), f"{script.name} imports {target}"


async def test_the_page_is_revalidated_and_strictly_confined(gateway: Gateway) -> None:
    for path in ("/", "/app/js/main.js", "/app/app.css"):
        response = await gateway.client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert "connect-src 'self';" in policy
        assert response.headers["cache-control"] == "no-cache"
    api = await gateway.client.get("/v1/analyses")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    assert api.headers["cache-control"] == "no-store"


async def test_the_page_serves_nothing_outside_its_folder(gateway: Gateway) -> None:
    for path in ("/app/../page.py", "/app/%2e%2e/settings.py", "/app/js/../../app.py"):
        response = await gateway.client.get(path)
        assert response.status_code == 404, path
        assert "GatewaySettings" not in response.text


async def test_on_the_embedded_default_nobody_signs_in(gateway: Gateway) -> None:
    config = (await gateway.client.get("/app/config.json")).json()

    assert config == {"auth": "none", "firebase": None, "max_image_bytes": 10 * 2**20}


async def test_with_firebase_the_page_gets_its_web_config(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(
        auth_mode="firebase", firebase_project_id="branet-prod", firebase_api_key="AIza-test"
    )

    config = (await gateway.client.get("/app/config.json")).json()
    policy = (await gateway.client.get("/")).headers["content-security-policy"]

    assert config["auth"] == "firebase"
    assert config["firebase"] == {
        "api_key": "AIza-test",
        "auth_domain": "branet-prod.firebaseapp.com",
        "project_id": "branet-prod",
        "emulator_url": None,
    }
    assert (
        "connect-src 'self' https://identitytoolkit.googleapis.com"
        " https://securetoken.googleapis.com;" in policy
    )


def test_the_sign_in_emulator_must_be_on_loopback() -> None:
    with pytest.raises(ValidationError, match="loopback"):
        GatewaySettings(
            auth_mode="firebase",
            firebase_project_id="p",
            firebase_auth_emulator_url="http://auth.example.org:9099",
        )
