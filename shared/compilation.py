"""torch.compile with frozen weights, on whichever thread compiles.

Only the model services import this (it needs torch; the gateway does not have it).
"""

from collections.abc import Callable
from typing import Any

import torch


def compile_frozen(module: torch.nn.Module, dynamic: bool | None = None) -> Callable[..., Any]:
    """`module` compiled by Inductor with its weights frozen as constants, which lets it fold
    batch norm into convolutions and hand oneDNN pre-packed weights.

    Freezing is an Inductor config flag, and that config is per thread in torch 2.14: set once
    at load, it did not reach the worker thread that made the first call and compiled (SAM's
    encoder then ran 0.3-0.5 s slower, on aten::addmm). `torch.compile(options=...)` does not
    pack the weights either (measured). So every call runs under the flag, for the 16 µs a
    config patch costs, and any compile, on any thread, freezes.
    """
    compiled = torch.compile(module, dynamic=dynamic)

    def run(*args: Any) -> Any:
        with torch._inductor.config.patch(freezing=True):
            return compiled(*args)

    return run
