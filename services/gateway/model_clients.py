"""HTTP clients for the two model services.

One `httpx.AsyncClient` per process is shared by both. A refused or dropped connection is
retried a bounded number of times (classify and segment are pure functions of their input, so a
retry cannot do harm); a timeout is not retried, it already cost the caller its wait. Every
failure becomes a `model_unavailable` problem that names the service, never its URL.
"""

import asyncio
import logging
from typing import TypeVar

import httpx
from asgi_correlation_id import correlation_id
from pydantic import BaseModel, ValidationError

from branet_shared.errors import ERRORS_BY_CODE, BraNetError, ModelUnavailable
from branet_shared.schemas import (
    BoundingBox,
    CheckResult,
    ClassifyResponse,
    Modality,
    ModelsResponse,
    Problem,
    Prompt,
    SegmentResponse,
    Unavailable,
)
from branet_shared.web import REQUEST_ID_HEADER

log = logging.getLogger(__name__)
ResponseT = TypeVar("ResponseT", bound=BaseModel)
RETRY_BACKOFF_S = 0.2
OCTET = "application/octet-stream"


class ModelServiceClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        service: str,
        base_url: str,
        read_timeout_s: float,
        retries: int,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.http = http
        self.auth = auth or httpx.USE_CLIENT_DEFAULT
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.read_timeout_s = read_timeout_s
        self.retries = retries

    def _headers(self) -> dict[str, str]:
        request_id = correlation_id.get()
        return {REQUEST_ID_HEADER: request_id} if request_id else {}

    async def _post_image(
        self,
        path: str,
        image: bytes,
        fields: dict[str, str],
        answer: type[ResponseT],
        *,
        raw: bool = False,
    ) -> ResponseT:
        timeout = httpx.Timeout(self.http.timeout.connect, read=self.read_timeout_s)
        for attempt in range(self.retries + 1):
            try:
                request = self._image_request(path, image, fields, raw, timeout)
                response = await self.http.send(request, auth=self.auth)
                break
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                if attempt == self.retries:
                    log.warning("%s unreachable after %d tries: %s", self.service, attempt + 1, exc)
                    raise ModelUnavailable(f"the {self.service} service is unreachable") from None
                await asyncio.sleep(RETRY_BACKOFF_S * 2**attempt)
            except httpx.TimeoutException:
                raise ModelUnavailable(
                    f"the {self.service} service did not answer within {self.read_timeout_s:g} s"
                ) from None
            except httpx.HTTPError as exc:
                log.warning("%s call failed: %s", self.service, exc)
                raise ModelUnavailable(f"the {self.service} service failed to answer") from None
        if response.status_code != 200:
            raise self._error_from(response)
        try:
            return answer.model_validate_json(response.content)
        except ValidationError:
            raise ModelUnavailable(f"the {self.service} service answered malformed data") from None

    def _image_request(
        self, path: str, image: bytes, fields: dict[str, str], raw: bool, timeout: httpx.Timeout
    ) -> httpx.Request:
        url = f"{self.base_url}{path}"
        if raw:
            # The image as the body, the fields as query parameters: the service is spared a
            # multipart parse (about 1 ms of its event loop per image).
            headers = self._headers() | {"content-type": OCTET}
            return self.http.build_request(
                "POST", url, content=image, params=fields, headers=headers, timeout=timeout
            )
        return self.http.build_request(
            "POST",
            url,
            files={"file": ("image", image, OCTET)},
            data=fields,
            headers=self._headers(),
            timeout=timeout,
        )

    def _error_from(self, response: httpx.Response) -> BraNetError:
        """Relay the service's own problem when it is one the caller can act on."""
        try:
            problem = Problem.model_validate_json(response.content)
        except ValidationError:
            problem = None
        if problem is not None and problem.code in ERRORS_BY_CODE:
            error_type = ERRORS_BY_CODE[problem.code]
            if error_type.status < 500 or error_type is ModelUnavailable:
                return error_type(problem.detail)
        return ModelUnavailable(f"the {self.service} service failed (HTTP {response.status_code})")

    async def readiness(self) -> CheckResult:
        try:
            response = await self.http.get(
                f"{self.base_url}/readyz", headers=self._headers(), auth=self.auth
            )
        except httpx.HTTPError:
            return CheckResult(ok=False, detail=f"the {self.service} service is unreachable")
        if response.status_code == 200:
            return CheckResult(ok=True)
        try:
            checks = response.json().get("checks", {})
            reasons = [c["detail"] for c in checks.values() if not c.get("ok")]
        except (ValueError, AttributeError, KeyError, TypeError):
            reasons = []
        return CheckResult(ok=False, detail="; ".join(reasons) or f"HTTP {response.status_code}")

    async def models(self) -> ModelsResponse:
        try:
            response = await self.http.get(
                f"{self.base_url}/v1/models", headers=self._headers(), auth=self.auth
            )
            response.raise_for_status()
            return ModelsResponse.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError):
            reason = f"the {self.service} service is unreachable"
            return ModelsResponse(
                models=[], unavailable=[Unavailable(service=self.service, name="*", reason=reason)]
            )


def _box_field(box: BoundingBox) -> str:
    return f"{box.x0},{box.y0},{box.x1},{box.y1}"


class ClassifierClient(ModelServiceClient):
    async def classify(
        self, image: bytes, modality: Modality, explain: bool, lesion: BoundingBox | None = None
    ) -> ClassifyResponse:
        """Classify `image`, or, given the lesion's box in it, the classifier's crop around it."""
        fields = {"explain": str(explain).lower()}
        if lesion is not None:
            fields["box"] = _box_field(lesion)
        path = f"/v1/classify/{modality.value}"
        return await self._post_image(path, image, fields, ClassifyResponse, raw=True)


class SegmenterClient(ModelServiceClient):
    async def segment(self, image: bytes, modality: Modality, prompt: Prompt) -> SegmentResponse:
        fields = {"modality": modality.value}
        if prompt.box is not None:
            fields["box"] = _box_field(prompt.box)
        if prompt.points:
            fields["points"] = ";".join(f"{p.x},{p.y},{p.label}" for p in prompt.points)
        return await self._post_image("/v1/segment", image, fields, SegmentResponse)
