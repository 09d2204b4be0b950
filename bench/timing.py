"""Timing helpers every benchmark script shares: repeated runs, percentiles, load summaries,
and the CPU flags printed with the numbers."""

import statistics
import time
from collections.abc import Callable
from typing import Any

from branet_runtime.precision import cpu_flags

# The flags that choose a speed path (bf16, int8) and that the numbers depend on.
SHOWN_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def flags_line() -> str:
    """`CPU flags: …`, this CPU's of SHOWN_FLAGS."""
    return f"CPU flags: {' '.join(f for f in SHOWN_FLAGS if f in cpu_flags()) or 'none of'}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed_ms(run: Callable[[], object], runs: int, warmup: int = 3) -> list[float]:
    """Milliseconds of each of `runs` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": percentile(times, 0.95),
        "p99_ms": percentile(times, 0.99),
    }


def load_result(
    concurrency: int, latencies: list[float], failures: int, elapsed_s: float
) -> dict[str, float]:
    """What a load level reports: throughput and latency percentiles."""
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "failed": failures,
        "throughput_rps": len(latencies) / elapsed_s,
        **summary(latencies),
    }
