"""What this machine's CPU offers, and the one rule for the precision a model serves in."""

from pathlib import Path
from typing import Literal

# What a setting may ask for, and what a model then runs in.
Precision = Literal["auto", "fp32", "bf16", "int8"]
ResolvedPrecision = Literal["fp32", "bf16", "int8"]


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


def float_precision() -> Literal["fp32", "bf16"]:
    """bf16 where the CPU has bf16 units, else fp32 (on AVX2 alone bf16 is ~5x slower)."""
    return "bf16" if cpu_has_bf16() else "fp32"


def resolve_precision(requested: Precision, int8_by_default: bool = False) -> ResolvedPrecision:
    """What a model runs in: the precision asked for by name; for `auto`, int8 where the model
    says int8 is its best path here (`int8_by_default`: e.g. the classifier's card ships an
    int8 artefact and ONNX Runtime is installed), else `float_precision()`."""
    if requested != "auto":
        return requested
    return "int8" if int8_by_default else float_precision()
