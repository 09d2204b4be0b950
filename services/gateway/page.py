"""The clinician's page at `/`: the Analysis and History tabs (`web/`), served from the
gateway's own files, with a policy that lets its scripts talk to this origin only (and, with
Firebase auth, to Firebase's sign-in endpoints)."""

from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from branet_gateway.settings import GatewaySettings
from branet_shared.schemas import Schema
from branet_shared.web import PagePolicy

WEB_DIR = Path(__file__).parent / "web"
ASSETS = "/app"
# What the Firebase Auth SDK calls to sign in and to refresh the ID token.
FIREBASE_ENDPOINTS = (
    "https://identitytoolkit.googleapis.com",
    "https://securetoken.googleapis.com",
)


class FirebaseWebConfig(Schema):
    api_key: str
    auth_domain: str
    project_id: str
    emulator_url: str | None = None


class PageConfig(Schema):
    """What the page needs to know before it draws anything: how to sign in, what it may send."""

    auth: Literal["none", "firebase"]
    firebase: FirebaseWebConfig | None = None
    max_image_bytes: int


def page_config(settings: GatewaySettings) -> PageConfig:
    firebase = None
    if settings.auth_mode == "firebase":
        firebase = FirebaseWebConfig(
            api_key=settings.firebase_api_key,
            auth_domain=settings.firebase_auth_domain
            or f"{settings.firebase_project_id}.firebaseapp.com",
            project_id=settings.firebase_project_id,
            emulator_url=settings.firebase_auth_emulator_url or None,
        )
    return PageConfig(
        auth=settings.auth_mode, firebase=firebase, max_image_bytes=settings.max_image_bytes
    )


def page_policy(settings: GatewaySettings) -> PagePolicy:
    """No inline script or style, no other origin; images only from here or the page's own
    object URLs (blobs fetched with the caller's token)."""
    connect = ["'self'"]
    if settings.auth_mode == "firebase":
        connect += (
            [settings.firebase_auth_emulator_url]
            if settings.firebase_auth_emulator_url
            else list(FIREBASE_ENDPOINTS)
        )
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        f"connect-src {' '.join(connect)}; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    return PagePolicy(policy, frozenset({"/"}), (f"{ASSETS}/",))


def add_page_routes(app: FastAPI) -> None:
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def get_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get(f"{ASSETS}/config.json", include_in_schema=False)
    async def get_page_config(request: Request) -> PageConfig:
        settings: GatewaySettings = request.state.settings
        return page_config(settings)

    # Editable installs link each file from the checkout: follow those links (StaticFiles
    # still refuses any path that leaves WEB_DIR).
    app.mount(ASSETS, StaticFiles(directory=WEB_DIR, follow_symlink=True), name="page")
