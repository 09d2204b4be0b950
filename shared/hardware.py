"""What this machine's CPU offers, and the numeric precision the model services run in."""

from pathlib import Path
from typing import Literal

Precision = Literal["auto", "fp32", "bf16"]


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them; empty where it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def cpu_has_bf16() -> bool:
    """bf16 matrix units (AVX-512 BF16 or AMX): where bf16 inference is faster, not slower."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_vnni() -> bool:
    """int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX): where int8 matrix
    products run about twice the bf16 rate."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def resolve_precision(precision: Precision) -> Literal["fp32", "bf16"]:
    """`auto` is bf16 where the CPU has bf16 units, else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if cpu_has_bf16() else "fp32"
