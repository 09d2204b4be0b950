"""A bounded mutation fuzz of upload validation (Hypothesis): whatever bytes arrive, the answer
is the image or a 4xx problem, never an exception that would be a 500.

Seeds are valid files of every kind the validator knows; each example applies a few byte-level
mutations (flips, insertions, deletions, truncation, duplicated spans). Derandomised: CI runs
the same examples every time, so a failure reproduces.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from branet_shared.errors import BraNetError
from branet_shared.images import validate_image
from tests.hostile_images import png_with_unrewritable_exif
from tests.images import encode, lesion_array

EXAMPLES = 1500


def _seeds() -> list[bytes]:
    gray = Image.fromarray(lesion_array(24, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    return [
        encode(gray),
        encode(Image.fromarray(lesion_array(24, 16).astype(np.uint16) * 200)),
        encode(gray.convert("RGBA")),
        encode(gray.convert("P")),
        encode(gray, "JPEG"),
        encode(gray.convert("RGB"), "JPEG", progressive=True),
        encode(gray, "JPEG", exif=exif.tobytes()),
        png_with_unrewritable_exif(),
    ]


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif action == "truncate":
            del data[max(at, 1) :]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        if not data:
            break
    return bytes(data)


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated())
def test_any_mutation_is_the_image_or_a_4xx(data: bytes) -> None:
    try:
        validate_image(data)
    except BraNetError as error:
        status, detail = error.status, error.detail
    else:
        status, detail = 200, "accepted"
    assert status == 200 or 400 <= status < 500, detail


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_seed_is_a_valid_image(seed: int) -> None:
    # Upright, turned by its EXIF orientation, or the 64×48 eXIf case.
    assert validate_image(SEEDS[seed]).image.size in {(24, 16), (16, 24), (64, 48)}
