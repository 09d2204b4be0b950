"""The allocator setting the segmenter uses: large freed buffers are reused, not re-faulted."""

import subprocess
import sys
import textwrap

import pytest

from branet_runtime.allocator import _glibc

# A 256 MiB array written twice, freed in between; prints the page faults of the second.
SECOND_WRITE_FAULTS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from branet_runtime.allocator import keep_freed_memory
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    np.ones(1 << 25)  # 256 MiB, freed at once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(1 << 25)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def second_write_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", SECOND_WRITE_FAULTS, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout)


@pytest.mark.skipif(_glibc() is None, reason="glibc's mallopt only")
def test_kept_memory_is_reused_without_page_faults() -> None:
    # By default the second array is a fresh mapping the kernel zeroes as it faults in (4 KiB
    # or, with transparent huge pages, 2 MiB at a time); kept, it is the first one's pages.
    default = second_write_faults("default")
    assert default >= 100
    assert second_write_faults("keep") < default / 10


# 256 MiB in 64 KiB blocks (heap, not mmap), each followed by a small block that stays:
# the freed pages are not at the heap's top, so glibc keeps them until trimmed.
RSS_AFTER_TRIM = textwrap.dedent(
    """
    import sys
    from branet_runtime.allocator import trim_freed_memory
    def rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    blocks, pins = [], []
    for _ in range(4096):
        blocks.append(bytearray(64 * 1024))
        pins.append(bytearray(64))
    del blocks
    held = rss_mib()
    assert trim_freed_memory()
    print(held, rss_mib())
    """
)


@pytest.mark.skipif(_glibc() is None, reason="glibc's malloc_trim only")
def test_trimming_gives_freed_memory_back() -> None:
    result = subprocess.run(
        [sys.executable, "-c", RSS_AFTER_TRIM], capture_output=True, text=True, check=True
    )

    held, trimmed = (float(value) for value in result.stdout.split())
    assert held - trimmed > 128  # MiB, of the 256 freed
