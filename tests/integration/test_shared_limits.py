"""Rate limits every instance shares: two gateway processes, one real Redis, one limit."""

from pathlib import Path

import httpx
import pytest

from branet_cli.stack import Ports, Stack
from tests.images import gray_png
from tests.integration.conftest import StackFactory, free_port

pytestmark = pytest.mark.integration


def analyse(gateway: str) -> int:
    response = httpx.post(
        f"{gateway}/v1/analyses",
        files={"file": ("scan.png", gray_png(), "image/png")},
        data={"modality": "ultrasound"},
        timeout=60,
    )
    return response.status_code


def test_two_gateways_sharing_redis_enforce_one_limit(
    make_stack: StackFactory, model_dir: Path, tmp_path: Path, redis_url: str
) -> None:
    limits = {
        "GATEWAY_RATE_LIMIT_STORAGE": redis_url,
        "GATEWAY_RATE_LIMIT_PER_USER": "4/minute",
        "GATEWAY_RATE_LIMIT_PER_IP": "100/minute",
    }
    first = make_stack(model_dir, **limits)
    first.up(timeout_s=120)
    # A second gateway process, in front of the same model services.
    segmenter, classifier, _ = first.services
    ports = Ports(free_port(), segmenter.port, classifier.port)
    second = Stack(tmp_path / "second", ports, env=first.env)
    second.start(second.services[-1], timeout_s=60)
    try:
        gateways = [first.services[-1].url, second.services[-1].url]

        codes = [analyse(gateways[n % 2]) for n in range(8)]

        assert codes == [201] * 4 + [429] * 4  # 4 in all, not 4 each
    finally:
        second.stop(second.services[-1])
