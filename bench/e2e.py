"""End to end through the gateway on the embedded stack, with the shipped models.

    python -m bench.e2e [--image ../shared/data/busi/benign/"benign (1).png"] [--requests 200]
    python -m bench.e2e --extract-roi   # the app's flow: "Extract masks and regions of interest"

Starts the three services as `branet up` does (fresh ports, a temporary data folder, rate
limits lifted, the shipped models), then measures analyses — classify-only, or with
`--extract-roi` automatic ROI (the segmenter's one-pass automatic mode, then the crop
classified): cold start per service (process start to /readyz), latency at concurrency 1 with
where the time goes (the Analysis's own timings), and throughput and latency at concurrency 4,
16 and 64; and each service's peak memory. Prints the CPU's flags with the numbers.
"""

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
from math import nan
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from bench.serving import free_port, peak_rss_mib
from bench.timing import flags_line, load_result
from branet_cli.stack import Ports, Stack


def form(extract_roi: bool) -> dict[str, str]:
    return {"modality": "ultrasound", **({"extract_roi": "true"} if extract_roi else {})}


async def load(
    url: str, image: bytes, concurrency: int, total: int, extract_roi: bool
) -> dict[str, float]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one() -> None:
            nonlocal failures
            async with gate:
                started = time.perf_counter()
                response = await client.post(
                    "/v1/analyses",
                    files={"file": ("scan.png", image, "image/png")},
                    data=form(extract_roi),
                )
                latencies.append((time.perf_counter() - started) * 1000)
                failures += response.status_code != 201

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        return load_result(concurrency, latencies, failures, time.perf_counter() - started)


def measure_stack(image: bytes, models: Path, requests: int, extract_roi: bool) -> dict[str, Any]:
    """Start the embedded stack, measure analyses through it, stop it."""
    with tempfile.TemporaryDirectory() as home:
        stack = Stack(
            Path(home),
            Ports(free_port(), free_port(), free_port()),
            env={
                "CLASSIFIER_MODEL_DIR": str(models.resolve()),
                "SEGMENTER_MODEL_CARD": str((models / "segmenter.json").resolve()),
                "GATEWAY_RATE_LIMIT_PER_USER": "1000000/minute",
                "GATEWAY_RATE_LIMIT_PER_IP": "1000000/minute",
                "GATEWAY_MAX_IN_FLIGHT_ANALYSES": "64",
                # Every request sends the same image: without this, all but the first would
                # reuse its cached embedding, which a stream of new scans never does.
                "SEGMENTER_EMBEDDING_CACHE_ENTRIES": "0",
            },
        )
        cold: dict[str, float] = {}
        try:
            for service in stack.services:
                started = time.perf_counter()
                stack.start(service, timeout_s=300)
                while httpx.get(f"{service.url}/readyz").status_code != 200 and (
                    extract_roi or service.name != "segmenter"  # classify-only needs no SAM
                ):
                    time.sleep(0.05)
                cold[service.name] = time.perf_counter() - started
            gateway = stack.services[-1].url
            timings = [
                httpx.post(
                    f"{gateway}/v1/analyses",
                    files={"file": ("scan.png", image, "image/png")},
                    data=form(extract_roi),
                    timeout=120,
                ).json()["timings"]
                for _ in range(30)
            ]
            rows = []
            for concurrency in (1, 4, 16, 64):
                print(f"  {requests} analyses at concurrency {concurrency} ...", flush=True)
                rows.append(asyncio.run(load(gateway, image, concurrency, requests, extract_roi)))
            pids = {s.name: stack.pid(s) for s in stack.services}
            memory = {name: peak_rss_mib([pid]) if pid else nan for name, pid in pids.items()}
        finally:
            stack.down()
    stages = {
        stage: statistics.median(t[stage] for t in timings)
        for stage in ("validate_ms", "segment_ms", "classify_ms", "store_ms", "total_ms")
        if all(t.get(stage) is not None for t in timings)
    }
    return {"cold_start_s": cold, "peak_rss_mib": memory, "stages_ms": stages, "load": rows}


def print_stack(result: dict[str, Any]) -> None:
    print("cold start (process start to /readyz; segmenter: to /healthz):")
    for name, seconds in result["cold_start_s"].items():
        print(f"  {name:<11} {seconds:6.2f} s   peak RSS {result['peak_rss_mib'][name]:6.0f} MiB")
    print("where the time goes at concurrency 1 (median of 30, ms):")
    for stage, ms in result["stages_ms"].items():
        print(f"  {stage:<12} {ms:8.2f}")
    print(f"{'conc.':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for r in result["load"]:
        print(
            f"{r['concurrency']:>5.0f} {r['throughput_rps']:>8.1f} {r['p50_ms']:>8.1f} "
            f"{r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['failed']:>7.0f}"
        )


def synthetic_png() -> bytes:
    """A 500×600 noise PNG, when no real image is given."""
    pixels = np.random.default_rng(0).integers(0, 255, (500, 600), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--image", type=Path, default=None, help="default: a synthetic 500×600")
    parser.add_argument("--requests", type=int, default=200, help="per concurrency level")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--extract-roi", action="store_true", help="automatic ROI first")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    image = args.image.read_bytes() if args.image is not None else synthetic_png()
    result = measure_stack(image, args.models, args.requests, args.extract_roi)
    kind = "automatic-ROI" if args.extract_roi else "classify-only"
    print(f"\n{kind} analyses through the gateway, image {len(image)} bytes")
    print(flags_line())
    print_stack(result)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
