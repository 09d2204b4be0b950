"""How the process's C allocator (glibc malloc) treats large freed blocks.

By default glibc serves every allocation above 32 MiB with a fresh mmap and unmaps it when it
is freed, so each one costs a page fault per 4 KiB page when it is next written. SAM's image
encoder allocates such buffers on every call (its global-attention bias alone is 400 MB), and
on a 2-vCPU machine the faults cost a third of an embedding: fp32 eager 11.2 → 7.1 s, bf16
compiled 4.5 → 3.8 s (bench/suite.py). Keeping freed memory in the heap, and every thread on
the one heap, lets the next call reuse those pages. The price: the process does not give
memory back to the kernel after a peak, which a service that repeats the same peak per
request does not miss.
"""

import ctypes
import ctypes.util
from functools import cache

# mallopt parameters and glibc's defaults (malloc.h, mallopt(3)).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_MAX = 65536
NEVER_TRIM = -1  # mallopt(3): -1 disables trimming


@cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def _mallopt(settings: dict[int, int]) -> bool:
    libc = _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings.items())


def keep_freed_memory() -> bool:
    """Large blocks from the heap, never trimmed, one heap for all threads. Call it before the
    threads that allocate start. False where the C library is not glibc (nothing changes)."""
    return _mallopt({M_MMAP_MAX: 0, M_TRIM_THRESHOLD: NEVER_TRIM, M_ARENA_MAX: 1})


def trim_freed_memory() -> bool:
    """Give the heap's free pages back to the kernel now (malloc_trim): after a large image,
    a service that does not repeat that peak per request should not keep holding it."""
    libc = _glibc()
    return libc is not None and hasattr(libc, "malloc_trim") and libc.malloc_trim(0) in (0, 1)


def return_freed_memory() -> bool:
    """glibc's defaults again for new allocations (the benchmarks measure both ways)."""
    return _mallopt({M_MMAP_MAX: DEFAULT_MMAP_MAX, M_TRIM_THRESHOLD: DEFAULT_TRIM_THRESHOLD})
