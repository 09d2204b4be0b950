"""Calls to the private model services carry a Google-signed ID token on Cloud Run.

Cloud Run admits a call to a private service only with an ID token whose audience is that
service's URL, signed by Google for an identity allowed to invoke it. The token comes from
the metadata server of the instance the gateway runs on (what
`google.oauth2.id_token.fetch_id_token` does there, but asynchronous), and is reused until
shortly before it expires.
"""

import time
from collections.abc import AsyncGenerator, Callable

import anyio
import httpx
import jwt

from branet_shared.errors import ModelUnavailable

METADATA_IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"
REFRESH_MARGIN_S = 300.0  # tokens live an hour; renew five minutes early


class GoogleIdTokenAuth(httpx.Auth):
    def __init__(
        self,
        audience: str,
        metadata_url: str,
        fetcher: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audience = audience
        self.metadata_url = metadata_url.rstrip("/")
        self.fetcher = fetcher  # a client without this auth, so the fetch is not itself signed
        self.clock = clock
        self._token = ""
        self._expires_at = 0.0
        self._lock = anyio.Lock()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.token()}"
        yield request

    async def token(self) -> str:
        async with self._lock:
            if self.clock() >= self._expires_at - REFRESH_MARGIN_S:
                self._token = await self._fetch()
                claims = jwt.decode(self._token, options={"verify_signature": False})
                self._expires_at = float(claims.get("exp", 0))
            return self._token

    async def _fetch(self) -> str:
        try:
            response = await self.fetcher.get(
                f"{self.metadata_url}{METADATA_IDENTITY_PATH}",
                params={"audience": self.audience, "format": "full"},
                headers={"Metadata-Flavor": "Google"},
                timeout=5.0,
            )
            response.raise_for_status()
        except httpx.HTTPError:
            raise ModelUnavailable(
                "cannot get an identity token to call the model services"
            ) from None
        return response.text.strip()
