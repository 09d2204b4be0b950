"""Firebase ID tokens, checked against keys served on loopback as Google serves its own."""

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from branet_gateway.settings import GatewaySettings
from tests.firebase_identity import certificate_pem, new_key
from tests.images import gray_png
from tests.unit.gateway.conftest import Gateway, GatewayFactory

PROJECT = "branet-test"


@dataclass
class KeyServer:
    url: str
    key: rsa.RSAPrivateKey
    fetches: int = 0

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": f"https://securetoken.google.com/{PROJECT}",
            "aud": PROJECT,
            "sub": "alice",
            "iat": now - 10,
            "exp": now + 3600,
            "auth_time": now - 60,
        }
        headers = {"kid": "key-1"}
        key: Any = overrides.pop("signing_key", self.key)
        headers.update(overrides.pop("headers", {}))
        claims.update(overrides)
        return jwt.encode(
            {k: v for k, v in claims.items() if v is not None},
            key,
            "RS256",
            headers={k: v for k, v in headers.items() if v is not None},
        )


@pytest.fixture(scope="module")
def key_server() -> Iterator[KeyServer]:
    """Google's x509 certificate endpoint, in miniature: {kid: PEM}, with Cache-Control."""
    key = new_key()
    body = json.dumps({"key-1": certificate_pem(key)}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.fetches += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server = KeyServer(f"http://127.0.0.1:{httpd.server_port}/certs", key)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, key_server: KeyServer) -> Gateway:
    return await make_gateway(
        auth_mode="firebase",
        firebase_project_id=PROJECT,
        firebase_certificates_url=key_server.url,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_is_the_caller(gateway: Gateway, key_server: KeyServer) -> None:
    response = await gateway.client.post(
        "/v1/analyses",
        files={"file": ("a.png", gray_png())},
        data={"modality": "ultrasound"},
        headers=bearer(key_server.token()),
    )

    assert response.status_code == 201, response.text
    assert response.json()["owner"] == "alice"


def unsigned_token(server: KeyServer) -> str:
    claims = jwt.decode(server.token(), options={"verify_signature": False})
    # `alg: none` carries no signature; the key argument is unused for it.
    return jwt.encode(claims, "", algorithm="none", headers={"kid": "key-1"})


BAD_TOKENS: dict[str, Callable[[KeyServer], str]] = {
    "wrong-signature": lambda s: s.token(signing_key=new_key()),
    "expired": lambda s: s.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    "wrong-audience": lambda s: s.token(aud="another-project"),
    "wrong-issuer": lambda s: s.token(iss="https://securetoken.google.com/another-project"),
    "no-kid": lambda s: s.token(headers={"kid": None}),
    "unknown-kid": lambda s: s.token(headers={"kid": "key-9"}),
    "alg-none": unsigned_token,
    "issued-in-future": lambda s: s.token(iat=int(time.time()) + 3600),
    "auth-time-in-future": lambda s: s.token(auth_time=int(time.time()) + 3600),
    "empty-subject": lambda s: s.token(sub=""),
    "no-subject": lambda s: s.token(sub=None),
    "not-a-jwt": lambda s: "not.a.jwt",
}


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_bad_tokens_are_401(gateway: Gateway, key_server: KeyServer, case: str) -> None:
    token = BAD_TOKENS[case](key_server)

    response = await gateway.client.get("/v1/analyses", headers=bearer(token))

    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert token not in response.text


@pytest.mark.parametrize("header", [None, "", "Basic YWxpY2U6c2VjcmV0", "Bearer "])
async def test_missing_or_other_authorization_is_401(gateway: Gateway, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}

    response = await gateway.client.get("/v1/analyses", headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


async def test_users_are_isolated(gateway: Gateway, key_server: KeyServer) -> None:
    bob = bearer(key_server.token(sub="bob"))
    alice = bearer(key_server.token(sub="alice"))
    created = await gateway.client.post(
        "/v1/analyses",
        files={"file": ("a.png", gray_png())},
        data={"modality": "ultrasound"},
        headers=bob,
    )
    analysis = created.json()
    path = f"/v1/analyses/{analysis['id']}"

    assert (await gateway.client.get(path, headers=alice)).status_code == 404
    assert (await gateway.client.get(f"{path}/image", headers=alice)).status_code == 404
    assert (await gateway.client.get("/v1/analyses", headers=alice)).json()["items"] == []
    assert (await gateway.client.delete(path, headers=alice)).status_code == 404
    assert (await gateway.client.get(path, headers=bob)).json() == analysis


async def test_certificates_are_fetched_once_while_fresh(
    gateway: Gateway, key_server: KeyServer
) -> None:
    before = key_server.fetches
    for _ in range(3):
        response = await gateway.client.get("/v1/analyses", headers=bearer(key_server.token()))
        assert response.status_code == 200

    assert key_server.fetches - before <= 1


async def test_tokens_never_reach_the_logs(
    gateway: Gateway, key_server: KeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = key_server.token()
    caplog.set_level(logging.DEBUG)

    await gateway.client.get("/v1/analyses", headers=bearer(token))
    await gateway.client.get("/v1/analyses", headers=bearer(token + "x"))

    assert all(token not in record.getMessage() for record in caplog.records)


def test_no_auth_is_refused_off_loopback() -> None:
    with pytest.raises(ValidationError, match="GATEWAY_ALLOW_INSECURE_NO_AUTH"):
        GatewaySettings(host="0.0.0.0")
    assert GatewaySettings(host="0.0.0.0", allow_insecure_no_auth=True).auth_mode == "none"
    assert GatewaySettings(host="127.0.0.1").auth_mode == "none"


def test_firebase_mode_needs_a_project() -> None:
    with pytest.raises(ValidationError, match="PROJECT_ID"):
        GatewaySettings(auth_mode="firebase")
