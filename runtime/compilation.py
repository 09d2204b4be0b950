"""torch.compile with frozen weights, on whichever thread compiles, and the fallback to eager
where compiling fails."""

import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)


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


def warm_up_or_run_eager(
    warm_up: Callable[[], None], compiled: bool, run_eager: Callable[[], None], what: str
) -> bool:
    """Run `warm_up` so that compilation happens now, not in a user's request; where a
    `compiled` model fails to compile (no C++ compiler, an unsupported CPU), call `run_eager`
    to switch it to eager and answer False. An eager model's failure is raised: it is a bug."""
    try:
        warm_up()
    except Exception:  # Inductor raises many kinds; any of them means "run eager"
        if not compiled:
            raise
        log.warning("compiling %s failed; serving it eager", what, exc_info=True)
        run_eager()
        return False
    return True
