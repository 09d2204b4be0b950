"""Gateway → model service calls carry a Google-signed ID token when `model_auth=id_token`.

A fake metadata server on loopback issues tokens as Cloud Run's does; the classifier side
records what arrives, and the test verifies that token's signature and audience.
"""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.types import ASGIApp, Receive, Scope, Send

from branet_classifier.app import create_app as create_classifier_app
from branet_classifier.settings import ClassifierSettings
from branet_gateway.app import create_app as create_gateway_app
from branet_gateway.settings import GatewaySettings
from tests.conftest import Serve
from tests.images import gray_png

CLASSIFIER = "http://classifier"


@dataclass
class MetadataServer:
    url: str
    key: rsa.RSAPrivateKey
    audiences: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def metadata_server() -> Iterator[MetadataServer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            if self.headers.get("Metadata-Flavor") != "Google" or "audience" not in query:
                self.send_response(403)
                self.end_headers()
                return
            server.audiences.append(query["audience"][0])
            now = int(time.time())
            token = jwt.encode(
                {
                    "aud": query["audience"][0],
                    "iss": "https://accounts.google.com",
                    "sub": "gateway-sa",
                    "iat": now,
                    "exp": now + 3600,
                },
                key,
                "RS256",
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(token.encode())

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server = MetadataServer(f"http://127.0.0.1:{httpd.server_port}", key)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield server
    httpd.shutdown()


class RecordAuthorization:
    """The model service's side: remembers each request's Authorization header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(dict(scope["headers"]).get(b"authorization", b"").decode())
        await self.app(scope, receive, send)


async def make_gateway(
    serve: Serve, model_dir: Path, tmp_path: Path, metadata_url: str
) -> tuple[httpx.AsyncClient, RecordAuthorization]:
    recorder = RecordAuthorization(create_classifier_app(ClassifierSettings(model_dir=model_dir)))
    classifier = await serve(recorder)  # type: ignore[arg-type]
    settings = GatewaySettings(
        data_dir=tmp_path,
        classifier_url=CLASSIFIER,
        model_auth="id_token",
        metadata_url=metadata_url,
    )
    gateway = await serve(create_gateway_app(settings, mounts={CLASSIFIER: classifier}))
    return httpx.AsyncClient(transport=gateway, base_url="http://gw"), recorder


async def analyse(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        "/v1/analyses", files={"file": ("a.png", gray_png())}, data={"modality": "ultrasound"}
    )


async def test_model_calls_carry_a_verifiable_id_token_for_the_callee(
    serve: Serve, model_dir: Path, tmp_path: Path, metadata_server: MetadataServer
) -> None:
    client, recorder = await make_gateway(serve, model_dir, tmp_path, metadata_server.url)
    fetched_before = len(metadata_server.audiences)

    first, second = await analyse(client), await analyse(client)
    await client.aclose()

    assert first.status_code == second.status_code == 201
    tokens = [h.removeprefix("Bearer ") for h in recorder.seen if h]
    assert len(tokens) == 2
    for token in tokens:
        claims = jwt.decode(
            token, metadata_server.key.public_key(), algorithms=["RS256"], audience=CLASSIFIER
        )
        assert claims["sub"] == "gateway-sa"
    # One token served both calls: fetched once, reused until near its expiry.
    assert metadata_server.audiences[fetched_before:] == [CLASSIFIER]


async def test_no_metadata_server_is_a_clear_503(
    serve: Serve, model_dir: Path, tmp_path: Path
) -> None:
    client, recorder = await make_gateway(serve, model_dir, tmp_path, "http://127.0.0.1:9")

    response = await analyse(client)
    await client.aclose()

    assert response.status_code == 503
    assert response.json()["code"] == "model_unavailable"
    assert "identity token" in response.json()["detail"]
    assert recorder.seen == []
