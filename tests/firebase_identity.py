"""Firebase Authentication in miniature, on loopback, signing with the tests' own key: the
certificate endpoint the gateway verifies ID tokens against (as Google serves its own), and
the three Identity Toolkit calls the Firebase JS SDK makes to sign in with a password, at the
paths it uses with `connectAuthEmulator`."""

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KEY_ID = "key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_pem(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken-test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class IdentityServer:
    """Users by email: (uid, password). `url` is where the SDK is pointed; the gateway reads
    `certificates_url`."""

    project: str
    users: dict[str, tuple[str, str]]
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    url: str = ""
    calls: list[str] = field(default_factory=list)

    @property
    def certificates_url(self) -> str:
        return f"{self.url}/certificates"

    def id_token(self, uid: str, email: str) -> str:
        now = int(time.time())
        claims = {
            "iss": f"https://securetoken.google.com/{self.project}",
            "aud": self.project,
            "sub": uid,
            "user_id": uid,
            "email": email,
            "email_verified": True,
            "iat": now - 5,
            "exp": now + 3600,
            "auth_time": now - 5,
            "firebase": {"identities": {"email": [email]}, "sign_in_provider": "password"},
        }
        return jwt.encode(claims, self.key, "RS256", headers={"kid": KEY_ID})

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append(path)
        if path == "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword":
            user = self.users.get(str(body.get("email")))
            if user is None or user[1] != body.get("password"):
                return 400, {"error": {"code": 400, "message": "INVALID_LOGIN_CREDENTIALS"}}
            uid, email = user[0], str(body["email"])
            return 200, self._session(uid, email) | {
                "kind": "identitytoolkit#VerifyPasswordResponse",
                "registered": True,
            }
        if path == "/identitytoolkit.googleapis.com/v1/accounts:lookup":
            claims = jwt.decode(str(body.get("idToken")), options={"verify_signature": False})
            record = {
                "localId": claims["sub"],
                "email": claims["email"],
                "emailVerified": True,
                "providerUserInfo": [
                    {
                        "providerId": "password",
                        "email": claims["email"],
                        "federatedId": claims["email"],
                        "rawId": claims["email"],
                    }
                ],
                "lastLoginAt": str(int(time.time() * 1000)),
                "createdAt": "0",
            }
            return 200, {"kind": "identitytoolkit#GetAccountInfoResponse", "users": [record]}
        if path == "/securetoken.googleapis.com/v1/token":
            uid, email = str(body.get("refresh_token", "")).split("|", 1)
            session = self._session(uid, email)
            return 200, {
                "id_token": session["idToken"],
                "refresh_token": session["refreshToken"],
                "expires_in": "3600",
                "token_type": "Bearer",
                "user_id": uid,
            }
        return 404, {"error": {"code": 404, "message": f"NOT_FOUND: {path}"}}

    def _session(self, uid: str, email: str) -> dict[str, Any]:
        return {
            "localId": uid,
            "email": email,
            "displayName": "",
            "idToken": self.id_token(uid, email),
            "refreshToken": f"{uid}|{email}",
            "expiresIn": "3600",
        }


@contextmanager
def identity_server(project: str, users: dict[str, tuple[str, str]]) -> Iterator[IdentityServer]:
    server = IdentityServer(project, users)
    certificates = json.dumps({KEY_ID: certificate_pem(server.key)}).encode()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "*")
            self.send_header("Access-Control-Allow-Methods", "GET, POST")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_OPTIONS(self) -> None:
            self._send(204, b"")

        def do_GET(self) -> None:
            if self.path == "/certificates":
                self._send(200, certificates)
            else:
                self._send(404, b"{}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length).decode()
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                body: dict[str, Any] = dict(parse_qsl(raw))
            else:
                body = json.loads(raw or "{}")
            status, answer = server.answer(self.path.split("?", 1)[0], body)
            self._send(status, json.dumps(answer).encode())

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
