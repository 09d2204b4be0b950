"""What this machine's CPU offers, and the numeric precision the model services run in."""

from pathlib import Path
from typing import Literal

Precision = Literal["auto", "fp32", "bf16"]


def cpu_has_bf16() -> bool:
    """bf16 matrix units (AVX-512 BF16 or AMX): where bf16 inference is faster, not slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_has_vnni() -> bool:
    """int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX): where int8 matrix
    products run about twice the bf16 rate."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def resolve_precision(precision: Precision) -> Literal["fp32", "bf16"]:
    """`auto` is bf16 where the CPU has bf16 units, else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if cpu_has_bf16() else "fp32"
