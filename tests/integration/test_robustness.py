"""The gateway under hostile files and under load, as real processes.

- Every file of the hostile corpus gets a 4xx problem+json; no process dies; the gateway's
  peak memory grows by less than `MEMORY_BOUND_MIB`; nothing is stored.
- A few hundred concurrent analyses against tight limits: only 201, 429 (rate limited) and
  503 (overloaded) come back, and the stores hold exactly the 201s, each whole.
"""

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from branet_cli.stack import Stack
from tests.hostile_images import hostile_files, resource_bombs, tolerated_files
from tests.images import gray_png
from tests.integration.conftest import StackFactory, start_stack

pytestmark = pytest.mark.integration
MEMORY_BOUND_MIB = 256


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def stored_blobs(stack: Stack) -> list[Path]:
    blobs = stack.home / "data" / "blobs"
    return [p for p in blobs.rglob("*") if p.is_file() and p.name != ".check"]


def limited_stack(root: Path, model_dir: Path, per_user: str) -> Iterator[Stack]:
    """A stack with tight limits: `per_user` analyses per user, 2 in flight at most."""
    stack = start_stack(
        root,
        model_dir,
        GATEWAY_RATE_LIMIT_PER_USER=per_user,
        GATEWAY_RATE_LIMIT_PER_IP="100000/minute",
        GATEWAY_MAX_IN_FLIGHT_ANALYSES="2",
    )
    stack.up(timeout_s=120)
    yield stack
    stack.down()


@pytest.fixture(scope="module")
def stack(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from limited_stack(tmp_path_factory.mktemp("robust"), model_dir, "100/minute")


@pytest.fixture(scope="module")
def loaded_stack(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own for the load test: the other tests' requests would spend its user's
    budget. 10 a minute is under the ~30 analyses two in flight finish during the test, so
    it sees the limit as well as shedding."""
    yield from limited_stack(tmp_path_factory.mktemp("loaded"), model_dir, "10/minute")


def test_hostile_files_are_refused_without_harm(stack: Stack) -> None:
    gateway = stack.services[-1]
    pids = {s.name: stack.pid(s) for s in stack.services}
    before = peak_rss_mib(pids["gateway"] or 0)
    corpus = hostile_files()

    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        for name, data in corpus.items():
            response = client.post(
                "/v1/analyses",
                files={"file": (f"{name}.png", data, "image/png")},
                data={"modality": "ultrasound"},
            )
            assert 400 <= response.status_code < 500, (name, response.status_code)
            assert response.headers["content-type"] == "application/problem+json", name
            assert response.json()["code"] in {
                "invalid_image",
                "unsupported_media_type",
                "payload_too_large",
            }, name
        for name, data in tolerated_files().items():
            response = client.post(
                "/v1/analyses",
                files={"file": (f"{name}.png", data)},
                data={"modality": "ultrasound"},
            )
            assert response.status_code == 201, (name, response.text)
            assert client.delete(f"/v1/analyses/{response.json()['id']}").status_code == 204

    assert {s.name: stack.pid(s) for s in stack.services} == pids  # nobody died or restarted
    growth = peak_rss_mib(pids["gateway"] or 0) - before
    print(f"{len(corpus)} hostile files; gateway peak RSS grew {growth:.1f} MiB")
    assert growth < MEMORY_BOUND_MIB
    assert stored_blobs(stack) == []


# Cloud Run's limits for the two (infra/services.tf), and the bound for the gateway.
GATEWAY_BOUND_MIB, CLASSIFIER_BOUND_MIB = 512, 2048


def test_four_bombs_at_once_cost_little_memory_or_time(
    make_stack: StackFactory, model_dir: Path
) -> None:
    stack = make_stack(model_dir)  # the default limits: every bomb gets a slot
    stack.up(timeout_s=120)
    gateway = stack.services[-1].url
    pids = {s.name: stack.pid(s) or 0 for s in stack.services}
    cpu_before = cpu_seconds(pids["gateway"])

    async def send(name: str, data: bytes) -> httpx.Response:
        async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
            return await client.post(
                "/v1/analyses",
                files={"file": (f"{name}.png", data, "image/png")},
                data={"modality": "ultrasound"},
            )

    async def all_at_once() -> list[httpx.Response]:
        return await asyncio.gather(*(send(n, data) for n, data in resource_bombs().items()))

    answers = asyncio.run(all_at_once())

    assert {a.status_code for a in answers} == {422}
    assert cpu_seconds(pids["gateway"]) - cpu_before < 2 * len(answers)
    assert peak_rss_mib(pids["gateway"]) < GATEWAY_BOUND_MIB
    assert peak_rss_mib(pids["classifier"]) < CLASSIFIER_BOUND_MIB


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_load_is_limited_and_shed_without_losing_anything(loaded_stack: Stack) -> None:
    stack = loaded_stack
    gateway = stack.services[-1].url
    image = gray_png()

    async def hammer() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=gateway, timeout=60, limits=limits) as client:
            gate = asyncio.Semaphore(16)

            async def one() -> httpx.Response:
                async with gate:
                    return await client.post(
                        "/v1/analyses",
                        files={"file": ("scan.png", image, "image/png")},
                        data={"modality": "ultrasound"},
                    )

            return await asyncio.gather(*(one() for _ in range(300)))

    answers = asyncio.run(hammer())

    codes = Counter(a.status_code for a in answers)
    print(f"300 requests, 16 at a time: {dict(codes)}")
    assert set(codes) <= {201, 429, 503}
    assert codes[429] > 0, "the per-user rate limit never applied"
    assert codes[503] > 0, "overload was never shed"
    assert codes[201] <= 100
    assert all(a.json()["code"] == "overloaded" for a in answers if a.status_code == 503)
    created = {a.json()["id"] for a in answers if a.status_code == 201}
    listed = _all_ids(gateway)
    assert listed == created
    assert len(stored_blobs(stack)) == len(created)
    for analysis_id in list(created)[:5]:
        assert httpx.get(f"{gateway}/v1/analyses/{analysis_id}/image").content == image


def _all_ids(gateway: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(f"{gateway}/v1/analyses", params=params).json()
        ids |= {item["id"] for item in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses a TCP socket listens on `port` from (/proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


def test_every_service_listens_on_loopback_only(stack: Stack) -> None:
    # The model services trust their callers because nothing else can reach them.
    for service in stack.services:
        assert listening_addresses(service.port) == {"127.0.0.1"}, service.name
