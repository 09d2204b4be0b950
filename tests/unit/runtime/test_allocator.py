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
