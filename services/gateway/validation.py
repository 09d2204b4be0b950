"""Upload validation off the gateway's process: in worker processes, each killed past a
deadline, so that no image can cost more than a bounded amount of CPU (or, by crashing a
worker, take the gateway down).

The header checks (`branet_shared.images`) refuse what a header can reveal: bombs of pixels,
bytes and scans. What remains is decoding the files that pass them, whose cost no header
bounds tightly; the deadline does. A worker hands back the facts the gateway needs, not the
pixels: the models decode the image themselves.
"""

import asyncio
import hashlib
import multiprocessing
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import cache

from pebble import ProcessExpired, ProcessPool

from branet_shared.dicom import is_dicom, render_dicom
from branet_shared.errors import InvalidImage
from branet_shared.images import (
    CONTENT_TYPES,
    DecodeLimits,
    ImageFormat,
    check_file_size,
    encode_png,
    validate_image,
)
from branet_shared.schemas import DicomInfo


@dataclass(frozen=True)
class ImageFacts:
    format: ImageFormat
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Validated:
    """What a worker hands back: the facts, and for a DICOM file its rendering and tags."""

    facts: ImageFacts
    rendered_png: bytes | None = None
    dicom: DicomInfo | None = None


@dataclass(frozen=True)
class Upload:
    """An upload that passed validation: the image's bytes (a DICOM file's rendered frame, as
    PNG: the file itself is dropped here) and what validation learnt of them."""

    data: bytes
    facts: ImageFacts
    dicom: DicomInfo | None = None

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


def validated(data: bytes, limits: DecodeLimits, frame: int) -> Validated:
    """Validate fully (in a worker): the facts, or the 4xx problem it raised."""
    if is_dicom(data):
        check_file_size(data, limits)
        rendered = render_dicom(data, limits, frame)
        png = encode_png(rendered.image)
        check_file_size(png, limits)  # what the models are sent must fit their limit too
        sha256 = hashlib.sha256(png).hexdigest()
        facts = ImageFacts("png", sha256, rendered.image.width, rendered.image.height)
        return Validated(facts, png, rendered.info)
    upload = validate_image(data, limits)
    return Validated(ImageFacts(upload.format, upload.sha256, upload.width, upload.height))


def _ready() -> bool:
    return True


@cache
def worker_pool(workers: int) -> ProcessPool:
    """One pool per process, its workers started as needed and replaced when killed."""
    # forkserver: the gateway has threads, which a plain fork would copy mid-lock; the server
    # imports the decoders once, so that a replaced worker starts in milliseconds.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPool(max_workers=workers, context=context)


class Validator:
    def __init__(self, limits: DecodeLimits, workers: int, timeout_s: float) -> None:
        self.limits = limits
        self.timeout_s = timeout_s
        self.workers = workers
        self.pool = worker_pool(workers)

    async def warm_up(self) -> None:
        """Start the workers now (the forkserver and its imports take a second or two), so
        that the first uploads after a start do not wait for them."""
        futures = [self.pool.schedule(_ready) for _ in range(self.workers)]
        await asyncio.gather(*(asyncio.wrap_future(future) for future in futures))

    async def validate(self, data: bytes, frame: int = 0) -> Upload:
        """`frame`: which frame of a multi-frame DICOM file (from 0)."""
        future = self.pool.schedule(
            validated, args=(data, self.limits, frame), timeout=self.timeout_s
        )
        try:
            result = await asyncio.wrap_future(future)
        except FutureTimeout:
            raise InvalidImage(
                f"the image did not decode within {self.timeout_s:g} s; it is refused"
            ) from None
        except ProcessExpired:  # killed from outside: out of memory
            raise InvalidImage("the image could not be decoded within the memory allowed") from None
        return Upload(result.rendered_png or data, result.facts, result.dicom)
