"""Upload validation off the gateway's process: in worker processes, each killed past a
deadline, so that no image can cost more than a bounded amount of CPU (or, by crashing a
worker, take the gateway down).

The header checks (`branet_shared.images`) refuse what a header can reveal: bombs of pixels,
bytes and scans. What remains is decoding the files that pass them, whose cost no header
bounds tightly; the deadline does. A worker hands back the facts the gateway needs, not the
pixels: the models decode the image themselves.
"""

import asyncio
import multiprocessing
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from pebble import ProcessExpired, ProcessPool

from branet_shared.errors import InvalidImage
from branet_shared.images import CONTENT_TYPES, DecodeLimits, ImageFormat, validate_image


@dataclass(frozen=True)
class ImageFacts:
    format: ImageFormat
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Upload:
    """An upload that passed validation: its bytes and what validation learnt of them."""

    data: bytes
    facts: ImageFacts

    @property
    def format(self) -> ImageFormat:
        return self.facts.format

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.facts.format]

    @property
    def sha256(self) -> str:
        return self.facts.sha256

    @property
    def width(self) -> int:
        return self.facts.width

    @property
    def height(self) -> int:
        return self.facts.height


def image_facts(data: bytes, limits: DecodeLimits) -> ImageFacts:
    """Validate fully (in a worker); the facts, or the 4xx problem it raised."""
    upload = validate_image(data, limits)
    return ImageFacts(upload.format, upload.sha256, upload.width, upload.height)


class Validator:
    def __init__(self, limits: DecodeLimits, workers: int, timeout_s: float) -> None:
        self.limits = limits
        self.timeout_s = timeout_s
        # forkserver: the gateway has threads, which a plain fork would copy mid-lock.
        context = multiprocessing.get_context("forkserver")
        self.pool = ProcessPool(max_workers=workers, context=context)

    async def validate(self, data: bytes) -> Upload:
        future = self.pool.schedule(image_facts, args=(data, self.limits), timeout=self.timeout_s)
        try:
            facts = await asyncio.wrap_future(future)
        except FutureTimeout:
            raise InvalidImage(
                f"the image did not decode within {self.timeout_s:g} s; it is refused"
            ) from None
        except ProcessExpired:  # killed from outside: out of memory
            raise InvalidImage("the image could not be decoded within the memory allowed") from None
        return Upload(data, facts)

    def close(self) -> None:
        self.pool.stop()  # type: ignore[no-untyped-call]
        self.pool.join(timeout=5)
