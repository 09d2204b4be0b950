"""Who is calling. Every read, list, blob fetch and delete is scoped to this identity.

`AUTH_MODE=firebase`: the app sends the user's Firebase ID token as `Authorization: Bearer`.
It is verified as Firebase documents: RS256, signed by one of Google's rotating certificates
(`kid`), `aud` = the project id, `iss` = `https://securetoken.google.com/<project>`, `exp`,
`iat` and `auth_time` not in the future or past beyond a small clock skew, and a non-empty
`sub`, which becomes the user id. `AUTH_MODE=none` (the embedded default): one local user.
"""

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from cryptography.x509 import load_pem_x509_certificate
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from branet_gateway.settings import GatewaySettings
from branet_shared.errors import Unauthenticated

log = logging.getLogger(__name__)
CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
MIN_REFRESH_INTERVAL_S = 30.0  # an unknown `kid` refetches the certificates at most this often


@dataclass(frozen=True)
class User:
    id: str


class InvalidToken(Unauthenticated):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers=CHALLENGE)


class FirebaseTokenVerifier:
    def __init__(
        self,
        http: httpx.AsyncClient,
        project_id: str,
        certificates_url: str,
        clock_skew_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.project_id = project_id
        self.certificates_url = certificates_url
        self.clock_skew_s = clock_skew_s
        self.clock = clock
        self._keys: dict[str, Any] = {}
        self._expires_at = 0.0
        self._fetched_at = float("-inf")

    async def verify(self, token: str) -> User:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the bearer token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise InvalidToken("the token must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token names no signing key (kid)")
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.project_id,
                issuer=f"https://securetoken.google.com/{self.project_id}",
                leeway=self.clock_skew_s,
                options={"require": ["exp", "iat", "aud", "iss", "sub", "auth_time"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is for another project") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token was not issued by Firebase for this project") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.PyJWTError:
            raise InvalidToken("the token's signature or claims are invalid") from None
        return User(id=self._subject(claims))

    def _subject(self, claims: dict[str, Any]) -> str:
        auth_time = claims["auth_time"]
        if not isinstance(auth_time, int | float) or auth_time > self.clock() + self.clock_skew_s:
            raise InvalidToken("the token's auth_time is in the future")
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= 128:
            raise InvalidToken("the token has no subject")
        return subject

    async def _key(self, kid: str) -> Any:
        now = self.clock()
        stale = now >= self._expires_at
        unknown = kid not in self._keys and now - self._fetched_at >= MIN_REFRESH_INTERVAL_S
        if stale or unknown:
            await self._refresh()
        if kid not in self._keys:
            raise InvalidToken("the token was signed with an unknown key")
        return self._keys[kid]

    async def _refresh(self) -> None:
        try:
            response = await self.http.get(self.certificates_url, timeout=5.0)
            response.raise_for_status()
            certificates = response.json()
            keys = {
                kid: load_pem_x509_certificate(pem.encode()).public_key()
                for kid, pem in certificates.items()
            }
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.error("cannot fetch the token signing certificates: %s", exc)
            if not self._keys:
                raise Unauthenticated("token signing keys are unavailable; try again") from None
            return  # keep the keys we have
        now = self.clock()
        self._keys, self._fetched_at = keys, now
        self._expires_at = now + _max_age(response.headers.get("cache-control", ""))


def _max_age(cache_control: str) -> float:
    found = re.search(r"max-age=(\d+)", cache_control)
    return float(found.group(1)) if found else 300.0


# Declares the scheme in the OpenAPI document; the token is checked by `current_user`.
firebase_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="firebaseIdToken",
    bearerFormat="JWT",
    description="A Firebase ID token: required where the gateway runs with"
    " GATEWAY_AUTH_MODE=firebase, ignored on the embedded default (one local user)",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(firebase_bearer)]


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise Unauthenticated(
            "send the Firebase ID token as `Authorization: Bearer <token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return credentials.credentials.strip()


async def current_user(request: Request, credentials: BearerCredentials) -> User:
    settings: GatewaySettings = request.state.settings
    if settings.auth_mode == "none":
        return User(id=settings.local_user)
    verifier: FirebaseTokenVerifier = request.state.verifier
    return await verifier.verify(bearer_token(credentials))


CurrentUser = Annotated[User, Depends(current_user)]
